/* Scratch dirs and stores for the fuzz targets: made once per process, removed at exit. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char scratch_dir[256];
static struct store scratch_store;
static int scratch_store_ok;

static void scratch_remove(void)
{
	struct qerr err;
	if (scratch_store_ok)
		store_close(&scratch_store);
	if (!scratch_dir[0])
		return;
	autofree char *parent = xstrdup(scratch_dir);
	char *slash = strrchr(parent, '/');
	*slash = '\0';
	autoclose int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd >= 0)
		rm_rf_at(pfd, slash + 1, &err);
}

const char *fuzz_scratch(const char *what)
{
	if (scratch_dir[0])
		return scratch_dir;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(scratch_dir, sizeof scratch_dir, "%s/qimg-fuzz-%s.XXXXXX", base ? base : "/tmp", what);
	if (!mkdtemp(scratch_dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(scratch_remove);
	return scratch_dir;
}

struct store *fuzz_store(const char *what)
{
	struct qerr err = {0};
	if (scratch_store_ok)
		return &scratch_store;
	autofree char *root = xasprintf("%s/store", fuzz_scratch(what));
	if (store_open(&scratch_store, root, &err) < 0) {
		fprintf(stderr, "fuzz: store_open %s: %s\n", root, err.msg);
		abort();
	}
	scratch_store_ok = 1;
	return &scratch_store;
}
