/* `qimg system keeper status|stop`: the per-user process that holds the user namespace runs join. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../run/run.h"
#include "cmd.h"

static const char keeper_help[] =
    "Usage: qimg system keeper status|stop\n\n"
    "Rootless runs join one user namespace held by a small per-user process (the keeper), created on first\n"
    "use with newuidmap/newgidmap. `status` shows it; `stop` ends it (the next run starts a new one, e.g.\n"
    "after /etc/subuid changed).\n\n"
    "Examples:\n  qimg system keeper status\n  qimg system keeper stop\n";

static int keeper_status(void)
{
	struct qerr err = {0};
	struct userns_keeper_info ki;
	if (userns_keeper_status(&ki, &err) < 0)
		return cmd_fail("system keeper", &err, 1);
	if (ki.running) {
		printf("running: pid %d, user namespace %llu, RSS %llu kB, record in %s\n", (int)ki.pid,
		       (unsigned long long)ki.ns_inode, (unsigned long long)ki.rss_kb, ki.dir);
		if (ki.uid_map)
			printf("uid map:\n%s", ki.uid_map);
	} else {
		printf("not running%s\n", geteuid() == 0 ? " (root needs none)" : "");
	}
	userns_keeper_info_free(&ki);
	return 0;
}

int cmd_system_keeper(struct gopts *g, int argc, char **argv)
{
	(void)g; /* the command table's signature */
	if (argc < 2 || cmd_is_help(argv[1])) {
		fputs(keeper_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "status"))
		return keeper_status();
	if (!strcmp(argv[1], "stop")) {
		struct qerr err = {0};
		bool was = false;
		if (userns_keeper_stop(&was, &err) < 0)
			return cmd_fail("system keeper", &err, 1);
		printf("%s\n", was ? "stopped" : "not running");
		return 0;
	}
	cmd_error("system keeper: unknown subcommand \"%s\" (status, stop)", argv[1]);
	return EXIT_USAGE;
}
