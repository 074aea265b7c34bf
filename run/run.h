/* The runner: id mapping (subuid ranges, newuidmap), the per-user keeper, namespaces, PID 1, exec. */
#ifndef QIMG_RUN_H
#define QIMG_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include "../store/store.h"
#include "../overlay/overlay.h"

/* ---- id mapping and the keeper (run/idmap.c, run/keeper.c) ---- */

struct idmap_range {
	uint32_t inside, outside, count;
};
struct idmap {
	struct idmap_range uid[2], gid[2]; /* [0] = 0 -> caller, [1] = 1.. -> subuid range */
	int nuid, ngid;
};
/* The caller's mapping: 0 -> own uid/gid, 1..N -> first /etc/subuid and /etc/subgid range of the user.
   Clear error naming the missing entry. As root: the identity map of all ids. */
int run_idmap_get(struct idmap *m, struct qerr *err);
/* One-line text form, e.g. "u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536" (caller frees). */
char *run_idmap_string(const struct idmap *m);

/* Enter the per-user keeper's user namespace (creating the keeper with newuidmap/newgidmap when it is missing or
   dead). The caller must be single-threaded. As root this is a no-op returning 0. */
int run_userns_enter(struct qerr *err);

/* ---- the runner (run/run.c) ---- */
/* struct run_opts and run_container() are defined below by the runner. */


/* Find id's first range in /etc/subuid-format text (by user name or numeric id). 0 found, -1 not. */
int run_subid_find(const char *text, const char *name, uint32_t id, uint32_t *start, uint32_t *count);

/* `qimg system keeper status|stop`. */
struct run_keeper_info {
	char *dir;       /* where the record lives */
	bool running;
	pid_t pid;
	uint64_t ns_inode;
	uint64_t rss_kb;
	char *uid_map;   /* the keeper's /proc/PID/uid_map, may be NULL */
};
int run_keeper_status(struct run_keeper_info *ki, struct qerr *err);
void run_keeper_info_free(struct run_keeper_info *ki);
/* Stop the keeper (SIGTERM) and forget it; runs already started keep their namespace. */
int run_keeper_stop(bool *was_running, struct qerr *err);

/* -v HOST:CTR[:ro] */
struct run_bind {
	const char *src, *dst;
	bool ro;
};

#define RUN_CAPS_ALL (~(uint64_t)0)

struct run_opts {
	struct store *st;
	const struct image_spec *spec;
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
	enum ovl_kind overlay;
	const char *keep;           /* --keep NAME: upper+work in runs/NAME/ */
	const char *from;           /* --from NAME: runs/NAME/upper as the top-most lower */
	uint64_t cap_add, cap_drop; /* bit n = capability n; RUN_CAPS_ALL = ALL */
};

/* gc's lease on an image: a shared lock held for the run's life (take it under the shared store lock, right
   after resolving the image). Returns the lock fd. */
int run_image_lease(struct store *st, const char *manifest_digest, struct qerr *err);

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
