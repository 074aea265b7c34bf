/* The runner: namespaces, mounts, PID 1, exec (the user namespace itself is userns/). */
#ifndef QIMG_RUN_H
#define QIMG_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include "../store/store.h"
#include "../overlay/overlay.h"

/* Exit statuses of a run (docker's convention); cmd/ uses the same for qimg's own errors. */
enum { EXIT_RUN_QIMG = 125, EXIT_RUN_NOEXEC = 126, EXIT_RUN_NOTFOUND = 127 };

#include "../userns/userns.h"


/* -v HOST:CTR[:ro] */
struct run_bind {
	const char *src, *dst;
	bool ro;
};

#define RUN_CAPS_ALL (~(uint64_t)0)

struct cdi_plan; /* cdi/cdi.h */

struct run_opts {
	struct store *st;
	const struct image_spec *spec;
	const char *image;          /* as given on the command line (for messages) */
	char *const *args;          /* CMD [ARG...] from the command line (replace the image's Cmd) */
	size_t nargs;
	const char *entrypoint;     /* --entrypoint: NULL = not given; "" = none (also clears the image's Cmd) */
	const struct strv *env;     /* -e / --env-file as K=V, applied over the image's Env */
	const char *workdir;        /* -w (absolute) */
	const char *user;           /* -u name|uid[:group|gid] */
	const char *hostname;       /* --hostname */
	const struct run_bind *binds;
	size_t nbinds;
	bool read_only, tty, interactive, net_none, no_new_privs;
	bool seccomp_unconfined;   /* --security-opt seccomp=unconfined: no syscall filter */
	enum ovl_kind overlay;
	const char *keep;           /* --keep NAME: upper+work in runs/NAME/ */
	const char *from;           /* --from NAME: runs/NAME/upper as the top-most lower */
	uint64_t cap_add, cap_drop; /* bit n = capability n; RUN_CAPS_ALL = ALL */
	int record_fd;              /* the run's live record (run_record_create), PID 1's pid is added; -1 none */
	const struct cdi_plan *cdi; /* --device/--gpus: the edits to apply (run/cdi_apply.c); NULL = none */
	const char *run_id;         /* the run's id (the hooks' OCI state) */
	bool holder;                /* --slurm-holder: no pid namespace, no command (run/holder.c) */
};


/* ---- live runs (run/record.c): live/slot-N, line files each flock'ed by one run's qimg for the run's life ---- */

#define RUN_ID_LEN 64
struct run_record {
	char id[RUN_ID_LEN + 1];
	char *name;      /* "" when the run has none */
	char *image;     /* as given on the command line */
	char *command;   /* the command line as run, space separated */
	pid_t pid;       /* the run's qimg process (forwards signals to the container) */
	pid_t init;      /* the container's PID 1 (0 until it is started) */
	int64_t created; /* unix seconds */
};
struct run_record_new {
	const char *name; /* --name, or NULL */
	const char *image;
	char *const *cmd;
	size_t ncmd;
};
/* Register this run under a new random id (id filled): refused when rn->name is invalid or taken by a live run.
   Returns the record's fd, which holds its lock: keep it open for the run's life. */
int run_record_create(struct store *st, const struct run_record_new *rn, char id[RUN_ID_LEN + 1], struct qerr *err);
/* Add PID 1's pid to the record once it is cloned. */
void run_record_started(int fd, pid_t init);
/* End of the run: mark the record's slot free, then release its lock (close fd). */
void run_record_end(int fd);
/* The live runs, newest first. Records whose qimg is gone (kill -9) are marked free on the way (counted in *stale
   when given). */
int run_records_list(struct store *st, struct run_record **out, size_t *n, size_t *stale, struct qerr *err);
void run_records_free(struct run_record *v, size_t n);
void run_record_free(struct run_record *r);
/* The live run named key: its name, its id, or a unique prefix of its id. */
int run_record_find(struct store *st, const char *key, struct run_record *out, struct qerr *err);
/* `qimg kill`: sig to the run key names: KILL to its PID 1 (the whole pid namespace dies with it), the others to
   its qimg, which forwards them. */
int run_record_signal(struct store *st, const char *key, int sig, struct qerr *err);

/* Run the container and wait for it (the caller holds the image's lease). Returns the command's exit status
   (128+N when killed by signal N), or -1 with err set (err->exit_status: 125 qimg's error, 126 cannot execute,
   127 not found). */
int run_container(const struct run_opts *o, struct qerr *err);

/* Capability name ("CHOWN", "cap_chown", "ALL") -> bit mask. 0 on success. */
int run_cap_parse(const char *name, uint64_t *mask);
/* Read a docker --env-file: K=V lines, bare K taken from our environment, # comments. */
int run_env_file_read(const char *path, struct strv *out, struct qerr *err);
/* Remove a kept container's dir runs/NAME (rootless: enters the user namespace first). */
int run_kept_remove(struct store *st, const char *name, struct qerr *err);
/* A valid --keep/--from name: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}. */
bool run_name_valid(const char *name);

#endif
