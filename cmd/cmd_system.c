/* `qimg system`: df (usage), check (fsck, in qimg-pull: it hashes blobs), keeper (the user-namespace holder). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char system_help[] =
    "Usage: qimg system SUBCOMMAND\n\n"
    "  df                      store usage: count, size and reclaimable bytes per kind\n"
    "  check [--repair]        verify every blob's digest and every layer; --repair removes what is\n"
    "                          corrupt or orphaned so the next pull fetches it again\n"
    "  keeper status|stop      the per-user process that holds the user namespace\n\n"
    "Examples:\n  qimg system df\n  qimg system check --repair\n  qimg system keeper status\n";

int cmd_system(struct gopts *g, int argc, char **argv)
{
	if (argc < 2 || cmd_is_help(argv[1])) {
		fputs(system_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "df"))
		return cmd_system_df(g, argc - 1, argv + 1);
	if (!strcmp(argv[1], "keeper"))
		return cmd_system_keeper(g, argc - 1, argv + 1);
	cmd_error("system: unknown subcommand \"%s\" (df, check, keeper)", argv[1]);
	return EXIT_USAGE;
}
