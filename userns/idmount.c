/* Placeholder until the idmount branch (issue 17) lands this session: reports the helper as not installed, so
   callers take the fuse-overlayfs fallback. */
#include "idmount.h"

#include <errno.h>

bool idmount_helper_found(void)
{
	return false;
}

int idmount_layers(const char *store_dir, char *const *ids, size_t n, bool single, int *fds, struct qerr *err)
{
	(void)ids, (void)n, (void)single, (void)fds;
	qerr_set(err, "shared store %s: qimg-idmount is not installed", store_dir);
	err->code = ENOENT;
	return -1;
}
