/* Private interfaces of cdi/: the YAML reader (heavy). */
#ifndef QIMG_CDI_INTERNAL_H
#define QIMG_CDI_INTERNAL_H

#include <jansson.h>
#include "cdi.h"

/* One YAML document as a jansson tree: mappings -> objects, sequences -> arrays, plain scalars that read as
   integers, booleans or null -> those, every other scalar -> a string. NULL with err set ("line N: ..."). */
json_t *cdi_yaml_load(const char *data, size_t len, struct qerr *err);

#endif
