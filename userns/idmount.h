/* The client side of qimg-idmount (idmount/), the setuid helper that gives a rootless caller idmapped,
   read-only, detached mounts of the layers of a configured shared store (issue 17): on-disk owners are mapped
   through exactly the caller's own id map (userns_idmap_get), so that inside the caller's user namespace the
   layer shows the image's real owners. */
#ifndef QIMG_IDMOUNT_H
#define QIMG_IDMOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include "../lib/util.h"

/* The helper is installed (beside qimg or in QIMG_LIBEXECDIR) and setuid root. */
bool idmount_helper_found(void);

/* One detached mount fd per layer id (fds[i] for ids[i], O_CLOEXEC), of STORE_DIR/layers/<id>, mapped with
   the caller's full map, or with only the caller's own uid/gid when single. Must be called from the initial
   user namespace (before joining any). -1 with err; err->code ENOENT when the helper is not installed. */
int idmount_layers(const char *store_dir, char *const *ids, size_t n, bool single, int *fds, struct qerr *err);

#endif
