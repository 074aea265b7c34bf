/* Private interfaces of the runner (run/): PID 1, the filesystem steps, config, capabilities, tty. */
#ifndef QIMG_RUN_INT_H
#define QIMG_RUN_INT_H

#include <signal.h>
#include <termios.h>
#include <sys/types.h>

#include "run.h"


/* ---- caps.c ---- */
extern const uint64_t run_caps_default;
/* The set the command gets: the default set with --cap-drop/--cap-add applied (ALL allowed in both). */
uint64_t run_caps_effective_set(uint64_t add, uint64_t drop);
/* Drop every capability outside set from the bounding set. */
int run_caps_bound(uint64_t set, int *failed_cap);
int run_caps_set(uint64_t permitted, uint64_t inheritable);
int run_caps_ambient(uint64_t set);
const char *run_cap_name(int cap);
/* Mask of the capabilities this kernel knows. */
uint64_t run_caps_known(void);

/* ---- config.c: the image config and flags turned into what exec needs (pure: no syscalls but reads) ---- */
struct run_user {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups from /etc/group, plus gid */
	size_t ngroups;
	char *name; /* NULL when the uid has no passwd entry */
	char *home; /* "/" when unknown */
};
/* Resolve "name|uid[:group|gid]" ("" = root) against /etc/passwd and /etc/group text (NULL = file missing). */
int run_user_resolve(const char *spec, const char *passwd, const char *group, struct run_user *u, struct qerr *err);
void run_user_free(struct run_user *u);
/* The command line per docker's rules: CLI args replace Cmd; --entrypoint replaces Entrypoint and clears Cmd. */
int run_argv_build(const struct image_spec *spec, const char *entrypoint, char *const *args, size_t nargs,
                   struct strv *out, struct qerr *err);
/* Set K=V (replacing K) / only when K is missing / look K up. */
void run_env_set(struct strv *env, const char *kv);
void run_env_default(struct strv *env, const char *key, const char *val);
const char *run_env_get(const struct strv *env, const char *key);
/* Image Env, then -e, then PATH/HOSTNAME/TERM defaults (HOME comes later, from passwd). */
void run_env_build(const struct image_spec *spec, const struct strv *user_env, const char *hostname, bool tty,
                   struct strv *out);
/* Parse one --env-file text (as docker does) into out. */
int run_env_text_parse(const char *text, const char *what, struct strv *out, struct qerr *err);

#define RUN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- messages from PID 1 and the command's child to qimg (one pipe, writes < PIPE_BUF are atomic) ---- */
enum { RUN_MSG_ERROR = 1, RUN_MSG_EXIT = 2, RUN_MSG_CDI = 3 /* status: the hook stage qimg runs */ };
struct run_msg {
	int kind;
	int status;
	char text[1000];
};

/* Everything PID 1 needs, prepared by run_container before the fork. */
struct run_init {
	const struct run_opts *o;
	bool rootless;
	const char *store_root; /* reopened by path: fds from before unshare point into the host's mounts */
	struct strv argv, env;  /* the command and its environment (image + command line), built before any namespace;
	                           PID 1 adds HOME and the devices' variables to a copy of env */
	struct strv lowers;     /* relative to the store root, bottom first */
	char *upper, *work;     /* relative to the store root; NULL = on the run's tmpfs */
	bool upper_fresh;       /* a kept upper just created: give it the image root's mode and owner */
	bool single_id;         /* the single-id user namespace: the command gets the root-emulation filter */
	struct strv bind_srcs;  /* -v sources as absolute paths */
	char *hostname;
	int msg_fd;       /* write end of the message pipe */
	int alive_fd;     /* a pidfd of qimg: readable once qimg is gone */
	int tty_sock;     /* -t: socket to hand the pty master to qimg; else -1 */
	sigset_t oldmask; /* signal mask to restore in the command */
	sigset_t fwd;     /* signals PID 1 forwards to the command */
	dev_t self_dev;   /* qimg's own binary: the command may never exec it (see init.c, exec_guard) */
	ino_t self_ino;
	/* --device/--gpus with hooks (run/cdi_apply.c) */
	char *cdi_bundle, *cdi_bundle_rel; /* the OCI bundle dir: absolute, and relative to the store */
	int cdi_go[2];                     /* createRuntime: qimg's answer to PID 1, a socket pair (never changed
	                                      after the clone: PID 1 shares this memory) */
	bool cdi_cloned;                   /* qimg: PID 1 was cloned (it closed its copies) */
	int cdi_tree;                      /* PID 1: the bundle, detached */
	pid_t cdi_pid;                     /* PID 1's pid on the host */
};
__attribute__((noreturn)) void run_init_main(struct run_init *in);
/* A stack of size bytes for a CLONE_VM child, with guard bytes of PROT_NONE below it: returns its top (NULL and
   errno on failure). */
void *run_stack_alloc(size_t size, size_t guard);

/* ---- holder.c: `run --slurm-holder`, the container the Slurm plugin's tasks join (slurm/spank_qimg.c) ---- */
/* After the setup steps: tell the plugin (stdout) our pid, the image's Env and working directory, then wait for a
   forwarded signal and exit. */
__attribute__((noreturn)) void run_holder_main(struct run_init *in);

/* ---- rootfs.c: the filesystem steps, in this order ---- */
struct rootfs {
	int tmpfd;     /* root of the run's tmpfs (upper, work, the /etc files) */
	int rootfd;    /* the new root: the overlay */
	bool stub;     /* the stub layer (mount points, /etc files) is stacked over the image */
};
int rootfs_private(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_tmpfs(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_stub(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_overlay(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_proc(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_dev(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_sys(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_etc_binds(struct run_init *in, struct rootfs *r, struct qerr *err); /* no stub layer only */
int rootfs_binds(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_pivot(struct run_init *in, struct rootfs *r, struct qerr *err);
int rootfs_readonly(struct run_init *in, struct rootfs *r, struct qerr *err); /* --read-only only */
/* Bind host path src (file, dir or device node) at dst inside the new root (resolved in it, created when
   missing), recursive or not, with mount attributes added. */
int rootfs_bind_in_root(struct rootfs *r, const char *src, const char *dst, bool recursive, unsigned attrs,
                        struct qerr *err);
/* Read a small regular file of the container (after pivot), never through magic links or into a fifo. */
char *rootfs_read(const char *path, struct qerr *err);
/* mkdir -p inside the container (after pivot). */
int rootfs_mkdir_p(const char *path, struct qerr *err);

/* ---- cdi_apply.c: --device/--gpus (only called when run_opts.cdi is set) ---- */
int run_cdi_prepare(const struct run_opts *o, struct run_init *in, struct qerr *err); /* qimg: the bundle */
void run_cdi_free(struct run_init *in);
void run_cdi_cloned(struct run_init *in);                                       /* qimg, after the clone */
void run_cdi_message(struct run_init *in, pid_t init, const struct run_msg *m); /* qimg: PID 1 asks for hooks */
void run_cdi_stopped(struct run_init *in, pid_t init);                          /* qimg: poststop hooks */
int run_cdi_bundle_grab(struct run_init *in, struct qerr *err);                 /* PID 1, before the run tmpfs */
int run_cdi_edits(struct run_init *in, struct rootfs *r, struct qerr *err);     /* PID 1, after the -v binds */
int run_cdi_start(struct run_init *in, struct qerr *err); /* the command's child, before exec (no allocation) */
void run_cdi_plan(struct run_init *in, struct strv *env, struct run_user *u); /* PID 1: env, groups */

/* ---- tty.c ---- */
/* PID 1: open a pty on the container's devpts, hand the master to qimg; returns the slave fd. */
int run_tty_open(struct run_init *in, struct qerr *err);
/* qimg: receive the master (-1 when PID 1 died first). */
int run_tty_recv(int sock);
/* qimg: our terminal in raw mode (false when stdin is no terminal) and back. */
bool run_tty_raw(struct termios *saved);
void run_tty_restore(const struct termios *saved);
/* qimg: give the pty our terminal's size. */
void run_tty_resize(int master);

/* ---- kept.c: --keep / --from containers under runs/NAME/ ---- */
/* Lock, check and create what --keep/--from need; fills in->upper/work/lowers. locks[0..1] get the lock fds. */
int run_kept_prepare(struct store *st, const struct run_opts *o, struct run_init *in, int locks[2], struct qerr *err);

#endif
