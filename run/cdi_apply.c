/* --device / --gpus in the runner: a CDI edits plan (cdi/) applied to the container. PID 1 binds the host's device
   nodes and the spec's mounts inside the new root (container paths resolved in it, never through image symlinks),
   runs createContainer and startContainer hooks; qimg runs createRuntime (on PID 1's request), poststart and
   poststop hooks on the host side, and writes the OCI bundle (config.json) the hooks read. */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../cdi/cdi.h"
#include <sys/mount.h>
#include <sys/socket.h>
#include "../lib/mountapi.h"

#define STATE_MAX    8192
#define RUN_ROOT_REL "tmp/r" /* rootfs.c's overlay target, relative to the store */

/* ---- qimg, before PID 1: the bundle ---- */

static void json_strv(struct buf *b, const struct strv *v)
{
	buf_append(b, "[", 1);
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			buf_append(b, ",", 1);
		cdi_json_str(b, v->v[i]);
	}
	buf_append(b, "]", 1);
}

/* The command's environment as far as qimg knows it before PID 1 reads /etc/passwd: image Env, CDI env, -e. */
static void bundle_env(const struct run_opts *o, const struct run_init *in, struct strv *env)
{
	run_env_build(o->spec, NULL, in->hostname, o->tty, env);
	for (size_t i = 0; i < o->cdi->env.n; i++)
		run_env_set(env, o->cdi->env.v[i]);
	for (size_t i = 0; o->env && i < o->env->n; i++)
		run_env_set(env, o->env->v[i]);
}

static char *bundle_config(const struct run_opts *o, const struct run_init *in)
{
	struct buf b = {0};
	struct strv env = {0};
	autofree char *root = xasprintf("%s/%s", in->store_root, RUN_ROOT_REL);
	bundle_env(o, in, &env);
	buf_printf(&b, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":");
	cdi_json_str(&b, root);
	buf_printf(&b, ",\"readonly\":%s},\"hostname\":", o->read_only ? "true" : "false");
	cdi_json_str(&b, in->hostname);
	buf_printf(&b, ",\"process\":{\"env\":");
	json_strv(&b, &env);
	buf_printf(&b, "},\"mounts\":[");
	for (size_t i = 0; i < o->cdi->nmounts; i++) {
		const struct cdi_mount *m = &o->cdi->mounts[i];
		buf_printf(&b, "%s{\"destination\":", i ? "," : "");
		cdi_json_str(&b, m->ctr);
		buf_printf(&b, ",\"type\":\"bind\",\"source\":");
		cdi_json_str(&b, m->host);
		buf_printf(&b, ",\"options\":");
		json_strv(&b, &m->opts);
		buf_printf(&b, "}");
	}
	buf_printf(&b, "]}\n");
	strv_free(&env);
	return b.p;
}

int run_cdi_prepare(const struct run_opts *o, struct run_init *in, struct qerr *err)
{
	if (!o->cdi->nhooks)
		return 0;
	autofree char *name = NULL;
	autoclose int dfd = store_tmp_dir(o->st, "cdi", &name, err);
	if (dfd < 0)
		return qerr_wrap(err, "CDI hooks' bundle: ");
	in->cdi_bundle_rel = xasprintf("tmp/%s", name);
	in->cdi_bundle = xasprintf("%s/%s", in->store_root, in->cdi_bundle_rel);
	autofree char *config = bundle_config(o, in);
	autoclose int fd = openat(dfd, "config.json", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, config, strlen(config)) < 0)
		return qerr_sys(err, "write %s/config.json", in->cdi_bundle);
	/* A socket, not a pipe: answering a PID 1 that was killed meanwhile must not SIGPIPE qimg. */
	if (cdi_plan_has_stage(o->cdi, CDI_CREATE_RUNTIME) &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, in->cdi_go) < 0)
		return qerr_sys(err, "socketpair");
	return 0;
}

void run_cdi_free(struct run_init *in)
{
	struct qerr ignore;
	if (in->cdi_bundle_rel && rm_rf_at(in->o->st->rootfd, in->cdi_bundle_rel, &ignore) < 0)
		log_warn("remove the CDI hooks' bundle %s: %s", in->cdi_bundle, ignore.msg);
	for (int i = in->cdi_cloned ? 1 : 0; i < 2; i++)
		if (in->cdi_go[i] >= 0)
			close(in->cdi_go[i]);
	free(in->cdi_bundle);
	free(in->cdi_bundle_rel);
	in->cdi_bundle = in->cdi_bundle_rel = NULL;
	in->cdi_go[0] = in->cdi_go[1] = -1;
}

/* ---- qimg, while PID 1 lives: no allocation (PID 1 shares our memory) ---- */

void run_cdi_cloned(struct run_init *in)
{
	in->cdi_cloned = true;
	if (in->cdi_go[0] >= 0)
		close(in->cdi_go[0]);
}

static int host_hooks(const struct run_init *in, enum cdi_stage s, pid_t pid, const char *status, bool keep_going,
                      struct qerr *err)
{
	char state[STATE_MAX];
	if (cdi_state_json(state, sizeof state, in->o->run_id, status, pid, in->cdi_bundle) < 0)
		return qerr_sys(err, "%s hooks: the OCI state", cdi_stage_name(s));
	return cdi_hooks_run(in->o->cdi, s, state, keep_going, err);
}

void run_cdi_message(struct run_init *in, pid_t init, const struct run_msg *m)
{
	struct qerr err = {0};
	if (m->status == CDI_POSTSTART) {
		(void)host_hooks(in, CDI_POSTSTART, init, "running", true, &err);
		return;
	}
	if (m->status != CDI_CREATE_RUNTIME || in->cdi_go[1] < 0)
		return;
	struct run_msg reply = {.kind = RUN_MSG_ERROR};
	if (host_hooks(in, CDI_CREATE_RUNTIME, init, "creating", false, &err) < 0) {
		reply.status = EXIT_RUN_QIMG;
		snprintf(reply.text, sizeof reply.text, "%.999s", err.msg);
	}
	(void)!send(in->cdi_go[1], &reply, sizeof reply, MSG_NOSIGNAL);
}

void run_cdi_stopped(struct run_init *in, pid_t init)
{
	struct qerr err = {0};
	if (cdi_plan_has_stage(in->o->cdi, CDI_POSTSTOP))
		(void)host_hooks(in, CDI_POSTSTOP, init, "stopped", true, &err);
}

/* ---- PID 1 ---- */

/* Before the run tmpfs hides the store's tmp/: a detached copy of the bundle, attached again on the tmpfs, so
   the hooks find it at the same path in the container's mount namespace. */
int run_cdi_bundle_grab(struct run_init *in, struct qerr *err)
{
	if (in->cdi_go[1] >= 0)
		close(in->cdi_go[1]); /* our copy; the field stays: qimg still writes to its own */
	if (!in->cdi_bundle)
		return 0;
	in->cdi_tree = open_tree(AT_FDCWD, in->cdi_bundle, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	return in->cdi_tree < 0 ? qerr_sys(err, "bind the CDI hooks' bundle %s", in->cdi_bundle) : 0;
}

static int bundle_attach(struct run_init *in, struct qerr *err)
{
	if (in->cdi_tree < 0)
		return 0;
	if (mkdirat(AT_FDCWD, in->cdi_bundle_rel, 0755) < 0 ||
	    move_mount(in->cdi_tree, "", AT_FDCWD, in->cdi_bundle_rel, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return qerr_sys(err, "mount the CDI hooks' bundle on the run tmpfs");
	close(in->cdi_tree);
	in->cdi_tree = -1;
	return 0;
}

struct mount_opt {
	const char *name;
	unsigned attr;
	bool recursive;
};
/* What a bind takes; propagation and atime flags mean nothing for a bind in our private namespace. */
static const struct mount_opt mount_opts[] = {
    {"ro", MOUNT_ATTR_RDONLY, false},
    {"nosuid", MOUNT_ATTR_NOSUID, false},
    {"nodev", MOUNT_ATTR_NODEV, false},
    {"noexec", MOUNT_ATTR_NOEXEC, false},
    {"rbind", 0, true},
    {"bind", 0, false},
    {"rw", 0, false},
    {"suid", 0, false},
    {"dev", 0, false},
    {"exec", 0, false},
    {"private", 0, false},
    {"rprivate", 0, false},
    {"slave", 0, false},
    {"rslave", 0, false},
    {"shared", 0, false},
    {"rshared", 0, false},
    {"unbindable", 0, false},
    {"runbindable", 0, false},
    {"relatime", 0, false},
    {"norelatime", 0, false},
    {"noatime", 0, false},
    {"strictatime", 0, false},
    {"nodiratime", 0, false},
    {NULL, 0, false},
};

static int mount_flags(const struct cdi_mount *m, unsigned *attrs, bool *recursive, struct qerr *err)
{
	*attrs = 0;
	*recursive = false;
	if (m->type && strcmp(m->type, "bind") && strcmp(m->type, "rbind"))
		return qerr_set(err, "CDI mount %s: type %s is not supported (bind mounts only)", m->ctr, m->type);
	for (size_t i = 0; i < m->opts.n; i++) {
		const struct mount_opt *k = mount_opts;
		while (k->name && strcmp(k->name, m->opts.v[i]))
			k++;
		if (!k->name)
			return qerr_set(err, "CDI mount %s: option %s is not supported", m->ctr, m->opts.v[i]);
		*attrs |= k->attr;
		*recursive |= k->recursive;
	}
	return 0;
}

static int apply_mounts(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	const struct cdi_plan *p = in->o->cdi;
	for (size_t i = 0; i < p->nmounts; i++) {
		const struct cdi_mount *m = &p->mounts[i];
		unsigned attrs;
		bool rec;
		if (mount_flags(m, &attrs, &rec, err) < 0 ||
		    rootfs_bind_in_root(r, m->host, m->ctr, rec, attrs, err) < 0)
			return qerr_wrap(err, "CDI mount %s -> %s: ", m->host, m->ctr);
	}
	return 0;
}

static bool dev_type_ok(const struct cdi_dev *d, const struct stat *sb)
{
	switch (d->type) {
	case 0: return S_ISCHR(sb->st_mode) || S_ISBLK(sb->st_mode);
	case 'c':
	case 'u': return S_ISCHR(sb->st_mode);
	case 'b': return S_ISBLK(sb->st_mode);
	case 'p': return S_ISFIFO(sb->st_mode);
	default: return false;
	}
}

/* A device node: the host's, bound (mknod is not allowed in a user namespace); the bind keeps the host mount's
   flags (no nodev), whatever mount the target file sits on. */
static int apply_devs(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	const struct cdi_plan *p = in->o->cdi;
	for (size_t i = 0; i < p->ndevs; i++) {
		const struct cdi_dev *d = &p->devs[i];
		struct stat sb;
		if (stat(d->host, &sb) < 0)
			return qerr_sys(err, "device %s", d->host);
		if (!dev_type_ok(d, &sb))
			return qerr_set(err, "device %s: not a %s node", d->host,
			                d->type == 'b'   ? "block device"
			                : d->type == 'p' ? "fifo"
			                                 : "device");
		if ((d->major >= 0 && major(sb.st_rdev) != (unsigned)d->major) ||
		    (d->minor >= 0 && minor(sb.st_rdev) != (unsigned)d->minor))
			return qerr_set(err, "device %s: is %u:%u, the CDI spec says %lld:%lld", d->host,
			                major(sb.st_rdev), minor(sb.st_rdev), (long long)d->major, (long long)d->minor);
		if (rootfs_bind_in_root(r, d->host, d->ctr, false, 0, err) < 0)
			return qerr_wrap(err, "device %s -> %s: ", d->host, d->ctr);
	}
	return 0;
}

static pid_t host_pid(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof buf - 1); /* still the host's /proc: before pivot_root */
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

/* createRuntime runs in qimg (the runtime's namespaces): ask it and wait for its answer. */
static int ask_create_runtime(struct run_init *in, struct qerr *err)
{
	if (in->cdi_go[0] < 0)
		return 0;
	struct run_msg m = {.kind = RUN_MSG_CDI, .status = CDI_CREATE_RUNTIME};
	if (write(in->msg_fd, &m, sizeof m) != (ssize_t)sizeof m)
		return qerr_sys(err, "createRuntime hooks: ask qimg");
	ssize_t n;
	while ((n = read(in->cdi_go[0], &m, sizeof m)) < 0 && errno == EINTR)
		;
	close(in->cdi_go[0]);
	if (n != (ssize_t)sizeof m)
		return qerr_set(err, "createRuntime hooks: qimg did not answer");
	return m.status ? qerr_set(err, "%s", m.text) : 0;
}

static int container_hooks(struct run_init *in, enum cdi_stage s, const char *status, struct qerr *err)
{
	char state[STATE_MAX];
	if (!cdi_plan_has_stage(in->o->cdi, s))
		return 0;
	if (cdi_state_json(state, sizeof state, in->o->run_id, status, in->cdi_pid, in->cdi_bundle) < 0)
		return qerr_sys(err, "%s hooks: the OCI state", cdi_stage_name(s));
	return cdi_hooks_run(in->o->cdi, s, state, false, err);
}

/* After the -v binds, before pivot_root: mounts (by depth), device nodes, the bundle, then the createRuntime and
   createContainer hooks (OCI order). */
int run_cdi_edits(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	if (apply_mounts(in, r, err) < 0 || apply_devs(in, r, err) < 0 || bundle_attach(in, err) < 0)
		return -1;
	in->cdi_pid = host_pid();
	if (ask_create_runtime(in, err) < 0)
		return -1;
	return container_hooks(in, CDI_CREATE_CONTAINER, "creating", err);
}

int run_cdi_start(struct run_init *in, struct qerr *err)
{
	return container_hooks(in, CDI_START_CONTAINER, "created", err);
}

/* The command's environment and groups: CDI env over the image's (-e still wins), additional gids. */
void run_cdi_plan(struct run_init *in, struct strv *env, struct run_user *u)
{
	const struct cdi_plan *p = in->o->cdi;
	for (size_t i = 0; i < p->env.n; i++)
		run_env_set(env, p->env.v[i]);
	for (size_t i = 0; in->o->env && i < in->o->env->n; i++)
		run_env_set(env, in->o->env->v[i]);
	for (size_t i = 0; i < p->ngids; i++) {
		bool have = false;
		for (size_t j = 0; j < u->ngroups && !have; j++)
			have = u->groups[j] == (gid_t)p->gids[i];
		if (have)
			continue;
		u->groups = xrealloc(u->groups, (u->ngroups + 1) * sizeof *u->groups);
		u->groups[u->ngroups++] = (gid_t)p->gids[i];
	}
}
