/* Devices for containers: CDI (Container Device Interface) names resolved into an "edits plan", a plain line file
   that qimg's run path applies without parsing JSON. The resolver (cdi/resolve.c, cdi/yaml.c) lives in qimg-pull;
   the plan, the name rules and the hook runner (cdi/plan.c, cdi/hooks.c) are plain C, linked into qimg too. */
#ifndef QIMG_CDI_H
#define QIMG_CDI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../lib/util.h"

#define CDI_SPEC_DIRS_DEFAULT "/etc/cdi:/var/run/cdi"
#define CDI_SPEC_DIRS_ENV     "QIMG_CDI_SPEC_DIRS"
#define CDI_PLAN_MAGIC        "qimg-cdi-plan 1"

/* A device node: the host's node bound onto a file at ctr inside the container's root. */
struct cdi_dev {
	char *host, *ctr;
	char type;              /* 'c', 'b', 'u', 'p', or 0 = take the host node's */
	int64_t major, minor;   /* -1 = not given (else checked against the host node) */
	int64_t mode, uid, gid; /* -1 = not given (informational: a bind shows the host node's) */
	char perms[4];          /* subset of "rwm" ("" = not given) */
};

/* A bind mount of host at ctr; opts as the spec lists them (ro, nosuid, nodev, noexec, rbind, ...). */
struct cdi_mount {
	char *host, *ctr, *type;
	struct strv opts;
};

/* OCI hook stages, in the order they run. */
enum cdi_stage {
	CDI_CREATE_RUNTIME,
	CDI_CREATE_CONTAINER,
	CDI_START_CONTAINER,
	CDI_POSTSTART,
	CDI_POSTSTOP,
	CDI_NSTAGES
};
struct cdi_hook {
	enum cdi_stage stage;
	char *path;
	struct strv args; /* argv including argv[0]; empty = {path} */
	struct strv env;  /* the hook's whole environment */
	int timeout;      /* seconds, 0 = none */
};

struct cdi_plan {
	struct strv env; /* K=V, later wins */
	struct cdi_dev *devs;
	size_t ndevs;
	struct cdi_mount *mounts;
	size_t nmounts;
	uint32_t *gids;
	size_t ngids;
	struct cdi_hook *hooks;
	size_t nhooks;
};

/* ---- plan.c (light) ---- */
const char *cdi_stage_name(enum cdi_stage s);
int cdi_stage_parse(const char *name, enum cdi_stage *out);
/* The plan as text (caller frees) / parsed from text (modified in place). A plan without its end line is refused. */
char *cdi_plan_format(const struct cdi_plan *p);
int cdi_plan_parse(char *text, struct cdi_plan *p, struct qerr *err);
void cdi_plan_free(struct cdi_plan *p);
/* Append a device / mount (copies). */
void cdi_plan_add_dev(struct cdi_plan *p, const struct cdi_dev *d);
void cdi_plan_add_mount(struct cdi_plan *p, const struct cdi_mount *m);
void cdi_plan_add_hook(struct cdi_plan *p, const struct cdi_hook *h);
/* Move everything of from to the end of to (from is emptied). */
void cdi_plan_append(struct cdi_plan *to, struct cdi_plan *from);
/* Before applying: a later device or mount at the same container path replaces the earlier one; mounts sorted by
   depth (fewest path components first, stable); env with one entry per key (the later). */
void cdi_plan_normalize(struct cdi_plan *p);
bool cdi_plan_has_stage(const struct cdi_plan *p, enum cdi_stage s);

/* A fully qualified CDI name "vendor.com/class=name": split into kind ("vendor.com/class") and name. */
int cdi_name_parse(const char *qualified, char **kind, char **name, struct qerr *err);
bool cdi_name_looks_qualified(const char *s); /* has '/' and '=' and does not start with '/' */
/* --device /dev/HOST[:/dev/CTR][:PERMS] into a device (paths borrowed from spec, which is copied). */
int cdi_plain_device_parse(const char *spec, struct cdi_dev *out, struct qerr *err);
/* docker's --gpus: all | N | device=ID[,ID...] (also "count=N", quoted forms) into nvidia.com/gpu=... names. */
int cdi_gpus_names(const char *value, struct strv *names, struct qerr *err);

/* JSON string (quoted, escaped) appended to b. */
void cdi_json_str(struct buf *b, const char *s);

/* ---- hooks.c (light): running a stage's hooks without allocating (safe in qimg after PID 1 shares its
   memory) ---- */
/* The OCI state for the hooks, into buf (truncated output is an error). */
int cdi_state_json(char *buf, size_t size, const char *id, const char *status, pid_t pid, const char *bundle);
/* Run every hook of stage s in order: state on stdin, timeouts honoured (SIGKILL). The first failure stops and
   fills err (naming the hook) unless keep_going (then it is logged as a warning and the rest still run). */
int cdi_hooks_run(const struct cdi_plan *p, enum cdi_stage s, const char *state, bool keep_going, struct qerr *err);

/* ---- resolve.c (heavy: qimg-pull) ---- */
/* Resolve names (fully qualified; "=all" = every device of the kind unless the spec has one named "all") with
   the spec files of dirs (colon-separated, later directories win; NULL = $QIMG_CDI_SPEC_DIRS or the default).
   An unknown name fails with the list of devices the specs offer (err->exit_status 125). */
int cdi_resolve(const char *dirs, char *const *names, size_t n, struct cdi_plan *out, struct qerr *err);

#endif
