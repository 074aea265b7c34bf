/* Fuzz target: image configs (pull/manifest.c image_config_parse). What parses has valid diffIDs and a
   normalised platform; a failure says why. */
#include "../../pull/internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_config c;
	struct qerr err = {0};
	if (size > CONFIG_MAX)
		return 0;
	if (image_config_parse((const char *)data, size, &c, &err) == 0) {
		for (size_t i = 0; i < c.diff_ids.n; i++)
			if (!store_digest_valid(c.diff_ids.v[i]))
				abort();
		if (!c.platform.os || !c.platform.arch || !c.platform.variant)
			abort();
		free(platform_string(&c.platform));
		image_config_free(&c);
	} else if (!err.msg[0]) {
		abort();
	}
	return 0;
}
