/* qimg's entry point: global options, then dispatch to one command. Built twice: light (qimg) and heavy (qimg-pull). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

#define QIMG_VERSION "0.1.0"

struct command {
	const char *name;
	int (*fn)(struct gopts *, int, char **);
	const char *summary;
};

#ifdef QIMG_HEAVY
#define HEAVY(fn) fn
#else
#define HEAVY(fn) NULL /* exec'd into qimg-pull */
#endif

static const struct command commands[] = {
    {"pull", HEAVY(cmd_pull), "pull an image from a registry into the store"},
    {"run", cmd_run, "run a command in a fresh container of an image"},
    {"images", cmd_images, "list images in the store"},
    {"inspect", cmd_inspect, "show an image's manifest and config as JSON"},
    {"rmi", cmd_rmi, "remove image references (data goes at the next gc)"},
    {"ps", cmd_ps, "list running containers"},
    {"kill", cmd_kill, "send a signal to running containers"},
    {"rm", cmd_rm, "remove kept containers (run --keep NAME)"},
    {"export", cmd_export, "flatten an image into a plain rootfs directory"},
    {"load", HEAVY(cmd_load), "load images from a docker-archive, oci-archive or OCI layout"},
    {"save", HEAVY(cmd_save), "write images as an oci-archive"},
    {"login", HEAVY(cmd_login), "check and keep credentials for a registry"},
    {"logout", HEAVY(cmd_logout), "remove kept credentials for a registry"},
    {"gc", cmd_gc, "remove what no image or live run uses"},
    {"system", cmd_system, "store and keeper maintenance: df, check, keeper"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: qimg [--store DIR] [-v|-vv] [-q] COMMAND [ARG...]\n\n"
	           "Pull OCI/Docker images and run them rootless in milliseconds.\n\nCommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->summary);
	fprintf(f, "\nGlobal options:\n"
	           "  --store DIR   store root (default $QIMG_STORE, else $XDG_DATA_HOME/qimg,\n"
	           "                ~/.local/share/qimg; /var/lib/qimg for root)\n"
	           "  -v, -vv       more log output on stderr\n"
	           "  -q            only errors on stderr\n"
	           "  --version     print the version\n\n"
	           "Run 'qimg COMMAND --help' for a command's options.\n\n"
	           "Examples:\n"
	           "  qimg pull debian:bookworm && qimg run debian:bookworm cat /etc/os-release\n"
	           "  qimg --store /scratch/qimg images --format json\n");
}

#ifndef QIMG_HEAVY
/* Hand a heavy command to qimg-pull. */
static int exec_heavy(char **argv)
{
	struct qerr err = {0};
	autofree char *helper = cmd_helper_find(&err);
	if (!helper)
		return cmd_fail(NULL, &err, EXIT_QIMG);
	execv(helper, argv);
	cmd_error("exec %s: %s", helper, strerror(errno));
	return EXIT_QIMG;
}
#endif

int main(int argc, char **argv)
{
	struct gopts g = {.argv0 = argv[0]};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--store") && i + 1 < argc)
			g.store = argv[++i];
		else if (!strncmp(a, "--store=", 8))
			g.store = a + 8;
		else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			qlog_level = LOG_VERBOSE;
		else if (!strcmp(a, "-vv") || !strcmp(a, "--debug"))
			qlog_level = LOG_DEBUG;
		else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			qlog_level = LOG_QUIET;
		else if (cmd_is_help(a)) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("qimg %s\n", QIMG_VERSION);
			return 0;
		} else {
			cmd_error("unknown global option %s (see qimg --help)", a);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* `system check` hashes every blob: it lives with libcrypto in qimg-pull. */
	if (!strcmp(argv[i], "system") && i + 1 < argc && !strcmp(argv[i + 1], "check")) {
#ifdef QIMG_HEAVY
		return cmd_system_check(&g, argc - i - 1, argv + i + 1);
#else
		return exec_heavy(argv);
#endif
	}
	/* Hidden: `qimg run --device` asks qimg-pull for the CDI edits plan (cdi/). */
	if (!strcmp(argv[i], "cdi-resolve")) {
#ifdef QIMG_HEAVY
		return cmd_cdi_resolve(&g, argc - i, argv + i);
#else
		return exec_heavy(argv);
#endif
	}
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, argv[i]) != 0)
			continue;
#ifndef QIMG_HEAVY
		if (!c->fn)
			return exec_heavy(argv);
#endif
		return c->fn(&g, argc - i, argv + i);
	}
	cmd_error("unknown command \"%s\" (see qimg --help)", argv[i]);
	return EXIT_USAGE;
}
