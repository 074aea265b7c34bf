/* The CLI: global options and one entry point per command (each in cmd/cmd_<name>.c). */
#ifndef QIMG_CMD_H
#define QIMG_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../run/run.h"
#include "../lib/util.h"

/* Exit codes: qimg's own error is a run's (docker's convention, run/run.h); usage errors 2. */
#define EXIT_QIMG  EXIT_RUN_QIMG
#define EXIT_USAGE 2

/* Options that come before the command name; passed down explicitly (no globals). */
struct gopts {
	const char *store;   /* --store DIR */
	const char *argv0;
};

/* Print "qimg: <msg>" on stderr (one line). */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print err as "qimg: <command>: <msg>" and return the exit status to use (err->exit_status or def). */
int cmd_fail(const char *command, const struct qerr *err, int def);
/* s as a JSON string (quoted, escaped) on f; NULL as "". */
void cmd_json_str(FILE *f, const char *s);
/* True when argv[i] is -h/--help. */
bool cmd_is_help(const char *arg);

/* Minimal option scanner shared by every command: handles "--opt=value", "--opt value", "-o value", "--" and
   stops at the first non-option (so `run IMAGE CMD -x` keeps -x for CMD). */
struct optscan {
	int argc;
	char **argv;
	int i;             /* next index */
	const char *name;  /* current option as written, e.g. "--store" or "-e" */
	const char *value; /* value when the option takes one */
	char *inl;         /* internal: "--k=v" copy */
};
/* Options taking a value are listed in with_value (NULL terminated). Returns 1 for an option (name/value set),
   0 at the end of options (s->i = first operand), -1 on error (message printed). */
int optscan_next(struct optscan *s, const char *const *with_value);

/* The qimg-pull helper: $QIMG_PULL_HELPER, beside this binary, ../libexec/qimg from it, or the install's
   libexec dir. Caller frees; NULL with err set when there is none. */
char *cmd_helper_find(struct qerr *err);
/* The same for another helper: $env_var, beside this binary, ../libexec/qimg, the install's libexec dir. */
char *cmd_helper_find_named(const char *name, const char *env_var, struct qerr *err);

struct store;
struct image_spec;
/* Open the store named by --store / $QIMG_STORE / the default. */
int cmd_open_store(const struct gopts *g, struct store *st, struct qerr *err);
/* What IMAGE names in the store: the manifest digest, and the ref (name, key) when IMAGE was a name. */
struct image_found {
	char *digest, *name, *key;
};
/* IMAGE as podman finds a local image: a manifest digest; a unique prefix (12+ hex digits, "sha256:" optional)
   of one named image's manifest digest; else a reference, a short name looked up through registries.conf
   (alias, unqualified-search registries, then docker.io). Not found: -1 with err->code ENOENT. */
int cmd_find_image(const char *arg, struct store *st, struct image_found *f, struct qerr *err);
void cmd_image_found_free(struct image_found *f);
/* Resolve IMAGE (as cmd_find_image) to its run spec. */
int cmd_resolve_image(struct gopts *g, const char *arg, struct store *st, struct image_spec *spec, struct qerr *err);
/* Format a byte count like "12.3MB" into out. */
void cmd_human_size(int64_t bytes, char *out, size_t n);

/* Unpack limits of pull and load (docs/SECURITY.md): the options, their --help lines, their environment. */
struct ovl_unpack_limits;
#define CMD_LIMIT_OPTIONS "--max-layer-size", "--max-ratio", "--max-entries", "--max-apparent-size"
#define CMD_LIMITS_HELP                                                                                            \
	"  --max-layer-size SIZE  refuse a layer larger than SIZE uncompressed (500M, 2G; default 16G)\n"           \
	"  --max-ratio N          refuse a layer that inflates more than N:1 (checked past 1 MiB; default 1000)\n"  \
	"  --max-entries N        refuse a layer of more than N files (default 10000000)\n"                          \
	"  --max-apparent-size SIZE\n"                                                                               \
	"                         refuse a layer whose files are larger than SIZE together, counting the holes of\n" \
	"                         sparse files (default 16G, or --max-layer-size when that is larger)\n"
#define CMD_LIMITS_ENV_HELP                                                                                        \
	"QIMG_MAX_LAYER_SIZE, QIMG_MAX_RATIO, QIMG_MAX_ENTRIES, QIMG_MAX_APPARENT_SIZE: the four limits above when\n" \
	"no option gives them.\n"
/* 1 when name is one of CMD_LIMIT_OPTIONS (value stored in *lim, or -1 after printing why it is invalid);
   0 when it is not. */
int cmd_limit_option(const char *command, const char *name, const char *value, struct ovl_unpack_limits *lim);
/* Each limit not set by an option (still 0) from its QIMG_MAX_* variable: 0, or -1 after printing why not. */
int cmd_limits_env(const char *command, struct ovl_unpack_limits *lim);

int cmd_pull(struct gopts *g, int argc, char **argv);
int cmd_images(struct gopts *g, int argc, char **argv);
int cmd_inspect(struct gopts *g, int argc, char **argv);
int cmd_rmi(struct gopts *g, int argc, char **argv);
int cmd_run(struct gopts *g, int argc, char **argv);
int cmd_rm(struct gopts *g, int argc, char **argv);
int cmd_export(struct gopts *g, int argc, char **argv);
int cmd_gc(struct gopts *g, int argc, char **argv);
int cmd_ps(struct gopts *g, int argc, char **argv);
int cmd_kill(struct gopts *g, int argc, char **argv);
int cmd_system(struct gopts *g, int argc, char **argv);
int cmd_system_df(struct gopts *g, int argc, char **argv);
int cmd_system_check(struct gopts *g, int argc, char **argv); /* heavy (qimg-pull) */
/* run --device/--gpus: the CDI edits plan (plain devices here, CDI names through qimg-pull cdi-resolve). */
struct cdi_plan;
int cmd_run_devices(const struct strv *devices, const struct strv *gpus, struct cdi_plan *p, struct qerr *err);
/* Internal: `qimg-pull cdi-resolve NAME...` prints a CDI edits plan (heavy). */
int cmd_cdi_resolve(struct gopts *g, int argc, char **argv);

int cmd_system_keeper(struct gopts *g, int argc, char **argv);

/* Offline images and credentials (heavy: qimg-pull). */
int cmd_load(struct gopts *g, int argc, char **argv);
int cmd_save(struct gopts *g, int argc, char **argv);
int cmd_login(struct gopts *g, int argc, char **argv);
int cmd_logout(struct gopts *g, int argc, char **argv);

#endif
