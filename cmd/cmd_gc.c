/* `qimg gc` and `qimg system df`: collect garbage, report usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../run/run.h"
#include "../store/gc.h"
#include "../store/store.h"
#include "cmd.h"

static const char gc_help[] =
    "Usage: qimg gc [--dry-run] [--older-than DURATION] [--max-size SIZE] [--all] [-q] [--format json]\n\n"
    "Remove blobs, unpacked layers and run specs that no image ref, kept container or live run uses,\n"
    "and leftovers of crashed pulls and runs (also the records of runs whose qimg was killed). Safe to run from cron "
    "while pulls and runs go on:\n"
    "it waits for pulls in progress and never touches what a live run uses. Anything it cannot read while it\n"
    "decides what is in use (a run spec, image ref, kept container record, lease or run record) stops it before it\n"
    "removes anything, with one line naming that file and how to repair it (exit 1).\n\n"
    "  --dry-run              print what would be removed, change nothing\n"
    "  --older-than DURATION  only objects unused for that long (30s, 10m, 2h, 7d, 1w)\n"
    "  --all                  with --older-than: also drop images not run or pulled for that long\n"
    "  --max-size SIZE        then drop least-recently-used images until the store fits (500M, 20G)\n"
    "  -q, --quiet            print nothing on success (for cron)\n"
    "  --format json          machine-readable report\n\n"
    "Examples:\n  qimg gc --dry-run\n  qimg gc -q --older-than 7d --max-size 20G     # crontab: 17 3 * * *\n";

/* A failure before gc removed anything says so (the store's own errors do, from store_gc). */
static int nothing_removed(struct qerr *err, const char *hint)
{
	size_t len = strlen(err->msg);
	snprintf(err->msg + len, sizeof err->msg - len, "; nothing was removed%s%s%s", hint ? " (" : "",
	         hint ? hint : "", hint ? ")" : "");
	return -1;
}

/* Records of runs whose qimg died (kill -9) count as leftovers; listing the live runs marks them free. This goes
   before the sweep so that a record gc cannot read stops it before it removes anything. */
static int stale_runs_remove(struct store *st, size_t *stale, struct qerr *err)
{
	struct run_record *v;
	size_t n;
	*stale = 0;
	if (run_records_list(st, &v, &n, stale, err) < 0) {
		qerr_wrap(err, "gc: run records: ");
		return nothing_removed(err, "qimg ps cannot read it either: delete it if no run uses it");
	}
	run_records_free(v, n);
	return 0;
}

/* Rootless stores hold files owned by subuids: only the user namespace may delete them. */
static int enter_store_ns(struct store *st, struct qerr *err)
{
	return st->rootless ? userns_enter(err) : 0;
}

static void print_report(const struct gc_report *rep, bool dry, bool json, bool quiet)
{
	char size[32];
	cmd_human_size(rep->bytes, size, sizeof size);
	if (json) {
		printf("{\"dry_run\": %s, \"images\": %zu, \"layers\": %zu, \"blobs\": %zu, \"tmp\": %zu, "
		       "\"bytes\": %lld, \"items\": [",
		       dry ? "true" : "false", rep->images, rep->layers, rep->blobs, rep->tmp, (long long)rep->bytes);
		for (size_t i = 0; i < rep->items.n; i++) {
			char kind[16], id[600];
			long long bytes = 0;
			if (sscanf(rep->items.v[i], "%15s %599s %lld", kind, id, &bytes) < 2)
				continue;
			printf("%s{\"kind\": \"%s\", \"id\": \"%s\", \"bytes\": %lld}", i ? ", " : "", kind, id, bytes);
		}
		printf("]}\n");
		return;
	}
	if (quiet)
		return;
	if (dry)
		for (size_t i = 0; i < rep->items.n; i++)
			printf("would remove %s\n", rep->items.v[i]);
	printf("%s %zu images, %zu layers, %zu blobs, %zu leftovers: %s\n", dry ? "Would free" : "Freed", rep->images,
	       rep->layers, rep->blobs, rep->tmp, size);
}

int cmd_gc(struct gopts *g, int argc, char **argv)
{
	static const char *const with_value[] = {"--older-than", "--max-size", "--format", NULL};
	struct optscan s = {argc, argv, 1};
	struct gc_opts o = {0};
	bool quiet = false, json = false;
	int r;
	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(gc_help, stdout);
			return 0;
		} else if (!strcmp(s.name, "--dry-run") || !strcmp(s.name, "-n")) {
			o.dry_run = true;
		} else if (!strcmp(s.name, "--all") || !strcmp(s.name, "-a")) {
			o.all = true;
		} else if (!strcmp(s.name, "-q") || !strcmp(s.name, "--quiet")) {
			quiet = true;
		} else if (!strcmp(s.name, "--format")) {
			json = !strcmp(s.value, "json");
			if (!json && strcmp(s.value, "text")) {
				cmd_error("gc: unknown format \"%s\" (text or json)", s.value);
				return EXIT_USAGE;
			}
		} else if (!strcmp(s.name, "--older-than")) {
			o.older_than = parse_duration(s.value);
			if (o.older_than < 0) {
				cmd_error("gc: --older-than: invalid duration \"%s\" (e.g. 30s, 10m, 2h, 7d)", s.value);
				return EXIT_USAGE;
			}
		} else if (!strcmp(s.name, "--max-size")) {
			o.max_size = parse_size(s.value);
			if (o.max_size <= 0) {
				cmd_error("gc: --max-size: invalid size \"%s\" (e.g. 500M, 20G)", s.value);
				return EXIT_USAGE;
			}
		} else {
			cmd_error("gc: unknown option %s", s.name);
			return EXIT_USAGE;
		}
	}
	if (r < 0)
		return EXIT_USAGE;
	if (s.i < argc) {
		cmd_error("gc: unexpected argument \"%s\"", argv[s.i]);
		return EXIT_USAGE;
	}
	if (o.all && o.older_than <= 0) {
		cmd_error("gc: --all needs --older-than (which images count as unused?)");
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("gc", &err, 1);
	if (enter_store_ns(&st, &err) < 0) {
		nothing_removed(&err, NULL);
		store_close(&st);
		return cmd_fail("gc", &err, 1);
	}
	struct gc_report rep = {0};
	size_t stale = 0;
	int rc = o.dry_run ? 0 : stale_runs_remove(&st, &stale, &err);
	if (rc == 0)
		rc = store_gc(&st, &o, &rep, &err);
	rep.tmp += stale;
	if (rc == 0)
		print_report(&rep, o.dry_run, json, quiet);
	else
		rc = cmd_fail("gc", &err, 1);
	gc_report_free(&rep);
	store_close(&st);
	return rc;
}

static const char df_help[] =
    "Usage: qimg system df [--format json]\n\n"
    "Show the store's usage: images, layers, blobs, kept containers, leftovers; count, size, reclaimable.\n\n"
    "Examples:\n  qimg system df\n  qimg system df --format json | jq .layers.bytes\n";

struct df_row {
	const char *what, *dir;
	size_t count;
	int64_t bytes, reclaim;
};

static bool skip_layer_sidefile(const char *name)
{
	size_t idlen;
	return store_layer_sidefile(name, &idlen);
}

/* Entries of dir but dot files and those skip (may be NULL) says to leave out. gc's dry run above has already
   listed every directory and stopped on any error, so one here is not repeated. */
static size_t count_entries(struct store *st, const char *dir, bool (*skip)(const char *name))
{
	struct strv names = {0};
	struct qerr ignored;
	size_t n = 0;
	if (store_dir_list(st, dir, &names, &ignored) == 0)
		for (size_t i = 0; i < names.n; i++)
			n += names.v[i][0] != '.' && !(skip && skip(names.v[i]));
	strv_free(&names);
	return n;
}

int cmd_system_df(struct gopts *g, int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(df_help, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--format=json") ||
		           (!strcmp(argv[i], "--format") && i + 1 < argc && !strcmp(argv[++i], "json"))) {
			json = true;
		} else {
			cmd_error("system df: unexpected argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0 || enter_store_ns(&st, &err) < 0)
		return cmd_fail("system df", &err, 1);
	struct gc_opts o = {.dry_run = true};
	struct gc_report rep;
	if (store_gc(&st, &o, &rep, &err) < 0) {
		store_close(&st);
		return cmd_fail("system df", &err, 1);
	}
	struct store_ref *refs;
	size_t nrefs = 0;
	if (store_refs_list(&st, &refs, &nrefs, &err) == 0)
		store_refs_free(refs, nrefs);
	struct df_row rows[] = {
	    {"images", "specs", count_entries(&st, "specs", NULL), 0, 0},
	    {"layers", "layers", count_entries(&st, "layers", skip_layer_sidefile), 0, 0},
	    {"blobs", "blobs/sha256", count_entries(&st, "blobs/sha256", NULL), 0, 0},
	    {"containers", "runs", count_entries(&st, "runs", NULL), 0, 0},
	    {"leftovers", "tmp", count_entries(&st, "tmp", NULL), 0, 0},
	};
	size_t nrows = sizeof rows / sizeof rows[0];
	for (size_t i = 0; i < nrows; i++) {
		rows[i].bytes = store_dir_usage(&st, rows[i].dir);
	}
	for (size_t i = 0; i < rep.items.n; i++) {
		char kind[16];
		long long bytes = 0;
		if (sscanf(rep.items.v[i], "%15s %*s %lld", kind, &bytes) != 2)
			continue;
		size_t row = !strcmp(kind, "image") ? 0 : !strcmp(kind, "layer") ? 1 : !strcmp(kind, "blob") ? 2 : 4;
		rows[row].reclaim += bytes;
	}
	if (json) {
		printf("{\"refs\": %zu", nrefs);
		for (size_t i = 0; i < nrows; i++)
			printf(", \"%s\": {\"count\": %zu, \"bytes\": %lld, \"reclaimable\": %lld}", rows[i].what,
			       rows[i].count, (long long)rows[i].bytes, (long long)rows[i].reclaim);
		printf("}\n");
	} else {
		printf("%-12s %7s %10s %12s\n", "TYPE", "COUNT", "SIZE", "RECLAIMABLE");
		for (size_t i = 0; i < nrows; i++) {
			char a[32], b[32];
			cmd_human_size(rows[i].bytes, a, sizeof a);
			cmd_human_size(rows[i].reclaim, b, sizeof b);
			printf("%-12s %7zu %10s %12s\n", rows[i].what, rows[i].count, a, b);
		}
	}
	gc_report_free(&rep);
	store_close(&st);
	return 0;
}
