/* `qimg ps` and `qimg kill`: the live runs registered in the store (run/record.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../run/run.h"
#include "cmd.h"

#define SHORT_ID 12

static const char ps_help[] =
    "Usage: qimg ps [-q] [--no-trunc] [--format table|json]\n\n"
    "List the running containers of this store (every 'qimg run' while it lives): id, name (--name), image,\n"
    "the pid of the run's qimg process, when it started, its command. Records of runs whose qimg was killed\n"
    "(kill -9) are dropped on the way.\n\n"
    "  -q              print only the ids\n"
    "  --no-trunc      full 64-digit ids\n"
    "  --format json   one JSON array of {Id, Name, Image, Pid, InitPid, Created, Command}\n\n"
    "Examples:\n  qimg ps\n  qimg ps --format json | jq -r '.[].Name'\n  qimg kill $(qimg ps -q)\n";

static const char kill_help[] =
    "Usage: qimg kill [-s SIGNAL] NAME|ID...\n\n"
    "Send SIGNAL (default KILL, as docker) to running containers, named by --name, by id or by a unique id\n"
    "prefix (qimg ps). KILL ends the container's PID 1, and with it every process in the container; the run\n"
    "then exits with 137. HUP, INT, QUIT, TERM, USR1, USR2 and WINCH go to the run's qimg, which passes them to\n"
    "the command (TERM: 143 unless the command handles it). Prints each container as given.\n\n"
    "  -s, --signal SIGNAL   KILL, TERM, INT, HUP, QUIT, USR1, USR2, WINCH (SIG prefix and numbers accepted)\n\n"
    "Examples:\n  qimg kill web\n  qimg kill -s TERM 3f2a9c41d0e7\n";

static const struct {
	const char *name;
	int sig;
} signals[] = {
    {"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
    {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH},
};

/* "KILL", "SIGKILL", "kill" or "9": one of the signals kill can deliver; 0 when not. */
static int signal_parse(const char *s)
{
	char *end;
	long num = strtol(s, &end, 10);
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if ((*end == '\0' && end != s && num == signals[i].sig) || !strcasecmp(s, signals[i].name))
			return signals[i].sig;
	return 0;
}

static void ago(int64_t created, char *out, size_t n)
{
	int64_t d = (int64_t)time(NULL) - created;
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(out, n, "%lld seconds ago", (long long)d);
	else if (d < 7200)
		snprintf(out, n, "%lld minutes ago", (long long)(d / 60));
	else if (d < 172800)
		snprintf(out, n, "%lld hours ago", (long long)(d / 3600));
	else
		snprintf(out, n, "%lld days ago", (long long)(d / 86400));
}

static void ps_print(const struct run_record *v, size_t n, bool quiet, bool json, bool no_trunc)
{
	int idw = no_trunc ? RUN_ID_LEN : SHORT_ID;
	if (json) {
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			printf("%s{\"Id\":\"%s\",\"Name\":", i ? "," : "", v[i].id);
			cmd_json_str(stdout, v[i].name);
			fputs(",\"Image\":", stdout);
			cmd_json_str(stdout, v[i].image);
			printf(",\"Pid\":%ld,\"InitPid\":%ld,\"Created\":%lld,\"Command\":", (long)v[i].pid,
			       (long)v[i].init, (long long)v[i].created);
			cmd_json_str(stdout, v[i].command);
			fputs("}", stdout);
		}
		fputs("]\n", stdout);
		return;
	}
	if (!quiet)
		printf("%-*s  %-16s %-30s %-8s %-16s %s\n", idw, "CONTAINER ID", "NAME", "IMAGE", "PID", "CREATED",
		       "COMMAND");
	for (size_t i = 0; i < n; i++) {
		if (quiet) {
			printf("%.*s\n", idw, v[i].id);
			continue;
		}
		char when[48];
		ago(v[i].created, when, sizeof when);
		printf("%-*.*s  %-16s %-30s %-8ld %-16s \"%s\"\n", idw, idw, v[i].id, v[i].name, v[i].image,
		       (long)v[i].pid, when, v[i].command);
	}
}

int cmd_ps(struct gopts *g, int argc, char **argv)
{
	static const char *const with_value[] = {"--format", NULL};
	struct optscan s = {argc, argv, 1};
	bool quiet = false, json = false, no_trunc = false;
	int r;
	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(ps_help, stdout);
			return 0;
		} else if (!strcmp(s.name, "-q") || !strcmp(s.name, "--quiet"))
			quiet = true;
		else if (!strcmp(s.name, "--no-trunc"))
			no_trunc = true;
		else if (!strcmp(s.name, "-a") || !strcmp(s.name, "--all"))
			; /* only running containers exist */
		else if (!strcmp(s.name, "--format")) {
			if (strcmp(s.value, "json") && strcmp(s.value, "table")) {
				cmd_error("ps: unknown format \"%s\" (table or json)", s.value);
				return EXIT_USAGE;
			}
			json = !strcmp(s.value, "json");
		} else {
			cmd_error("ps: unknown option %s (see qimg ps --help)", s.name);
			return EXIT_USAGE;
		}
	}
	if (r < 0)
		return EXIT_USAGE;
	if (s.i < argc) {
		cmd_error("ps: unexpected argument \"%s\"", argv[s.i]);
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	struct run_record *v;
	size_t n;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("ps", &err, 1);
	if (run_records_list(&st, &v, &n, NULL, &err) < 0) {
		store_close(&st);
		return cmd_fail("ps", &err, 1);
	}
	ps_print(v, n, quiet, json, no_trunc);
	run_records_free(v, n);
	store_close(&st);
	return 0;
}

int cmd_kill(struct gopts *g, int argc, char **argv)
{
	static const char *const with_value[] = {"-s", "--signal", NULL};
	struct optscan s = {argc, argv, 1};
	int sig = SIGKILL, r;
	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(kill_help, stdout);
			return 0;
		} else if (!strcmp(s.name, "-s") || !strcmp(s.name, "--signal")) {
			sig = signal_parse(s.value);
			if (!sig) {
				cmd_error(
				    "kill: signal %s is not supported (KILL, TERM, INT, HUP, QUIT, USR1, USR2, WINCH)",
				    s.value);
				return EXIT_USAGE;
			}
		} else {
			cmd_error("kill: unknown option %s (see qimg kill --help)", s.name);
			return EXIT_USAGE;
		}
	}
	if (r < 0)
		return EXIT_USAGE;
	if (s.i >= argc) {
		cmd_error("kill: missing NAME|ID (see qimg kill --help)");
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("kill", &err, 1);
	int rc = 0;
	for (int i = s.i; i < argc; i++) {
		if (run_record_signal(&st, argv[i], sig, &err) < 0)
			rc = cmd_fail("kill", &err, 1);
		else
			printf("%s\n", argv[i]);
	}
	store_close(&st);
	return rc;
}
