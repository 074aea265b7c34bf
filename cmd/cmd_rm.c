/* `qimg rm NAME...`: remove containers kept with `run --keep NAME`. */
#include <stdio.h>

#include "../run/run.h"
#include "cmd.h"

static const char rm_help[] = "Usage: qimg rm NAME...\n\n"
                              "Remove containers kept with `qimg run --keep NAME` (their changes are lost).\n\n"
                              "Example:\n  qimg run --keep scratch busybox touch /x && qimg rm scratch\n";

int cmd_rm(struct gopts *g, int argc, char **argv)
{
	struct optscan s = {.argc = argc, .argv = argv, .i = 1};
	int r;
	while ((r = optscan_next(&s, NULL)) == 1) {
		if (cmd_is_help(s.name)) {
			fputs(rm_help, stdout);
			return 0;
		}
		cmd_error("rm: unknown option %s", s.name);
		return EXIT_USAGE;
	}
	if (r < 0)
		return EXIT_USAGE;
	if (s.i >= argc) {
		fputs(rm_help, stderr);
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("rm", &err, 1);
	int rc = 0;
	for (int i = s.i; i < argc; i++) {
		if (run_kept_remove(&st, argv[i], &err) < 0)
			rc = cmd_fail("rm", &err, 1);
		else
			printf("%s\n", argv[i]);
	}
	store_close(&st);
	return rc;
}
