/* `qimg export [--own] IMAGE DIR`: write an image's flattened root filesystem into a directory. */
#include <stdio.h>
#include <string.h>

#include "../overlay/overlay.h"
#include "../store/store.h"
#include "cmd.h"

static const char export_help[] =
    "Usage: qimg export [--own] IMAGE DIR\n\n"
    "Write the image's root filesystem (all layers applied, whiteouts resolved) into DIR, which is created\n"
    "or must be empty. Owners, modes (set-id bits included), times, symlinks, hardlinks and user xattrs are\n"
    "kept, and sparse files keep their holes (only their data is copied). In a rootless store the files keep\n"
    "the mapped owners of the store (uid 100 in the image is subuid_base+99 on disk), so DIR can only be\n"
    "cleaned up from inside the user namespace; --own makes you the owner of everything instead.\n\n"
    "  --own    chown every file to the calling user (as root: to root)\n\n"
    "Examples:\n"
    "  qimg export debian:bookworm ./rootfs\n"
    "  qimg export --own busybox /tmp/bb && ls -l /tmp/bb/bin/busybox\n";

int cmd_export(struct gopts *g, int argc, char **argv)
{
	static const char *const with_value[] = {NULL};
	struct optscan s = {argc, argv, 1};
	bool own = false;
	int r;
	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(export_help, stdout);
			return 0;
		} else if (!strcmp(s.name, "--own")) {
			own = true;
		} else {
			cmd_error("export: unknown option %s", s.name);
			return EXIT_USAGE;
		}
	}
	if (r < 0)
		return EXIT_USAGE;
	if (argc - s.i != 2) {
		fputs(export_help, stderr);
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("export", &err, 1);
	struct image_spec spec;
	if (cmd_resolve_image(g, argv[s.i], &st, &spec, &err) < 0) {
		store_close(&st);
		return cmd_fail("export", &err, 1);
	}
	int rc = ovl_export_dir(&st, &spec, argv[s.i + 1], own, &err) < 0 ? cmd_fail("export", &err, 1) : 0;
	store_spec_free(&spec);
	store_close(&st);
	return rc;
}
