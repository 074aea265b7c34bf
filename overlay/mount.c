/* Mounting layer dirs as one overlay: kernel overlayfs through the new mount API, or fuse-overlayfs. */
#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include "../lib/mountapi.h"
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC   0x65735546
#define FSCONFIG_VALUE_MAX 256 /* fsconfig copies at most 256 bytes of a string value */
#define FUSE_OVERLAYFS     "fuse-overlayfs"

enum ovl_kind ovl_kind_default(void)
{
	enum ovl_kind k = OVL_KERNEL;
	const char *env = getenv("QIMG_OVERLAY");
	if (env && *env)
		(void)ovl_kind_parse(env, &k);
	return k;
}

int ovl_kind_parse(const char *s, enum ovl_kind *out)
{
	if (!strcmp(s, "kernel") || !strcmp(s, "overlay") || !strcmp(s, "overlayfs")) {
		*out = OVL_KERNEL;
		return 0;
	}
	if (!strcmp(s, "fuse") || !strcmp(s, FUSE_OVERLAYFS)) {
		*out = OVL_FUSE;
		return 0;
	}
	return -1;
}

/* After a failed fsconfig/fsmount, the fs context holds the kernel's reason ("e overlay: ..."): add it. */
static int fs_fail(struct qerr *err, int fsfd, const char *what, const char *target)
{
	int saved = errno;
	char log[512];
	ssize_t n = fsfd >= 0 ? read(fsfd, log, sizeof log - 1) : -1;
	errno = saved;
	if (n > 2) {
		log[n] = '\0';
		log[strcspn(log, "\n")] = '\0';
		qerr_sys(err, "overlay on %s: %s (%s)", target, what, log + 2);
	} else {
		qerr_sys(err, "overlay on %s: %s", target, what);
	}
	err->code = saved;
	return -1;
}

static int set_str(int fsfd, const char *key, const char *val, const char *target, struct qerr *err)
{
	if (strlen(val) >= FSCONFIG_VALUE_MAX) {
		errno = ENAMETOOLONG;
		return fs_fail(err, -1, val, target);
	}
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, key, val, 0) < 0) {
		autofree char *what = xasprintf("%s=%s", key, val);
		return fs_fail(err, fsfd, what, target);
	}
	return 0;
}

/* Attach the detached mount mfd on target. */
static int attach(int mfd, const char *target, struct qerr *err)
{
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return qerr_sys(err, "overlay: move_mount on %s", target);
	return 0;
}

/* Kernels before 6.8 have no "lowerdir+": one "top:...:bottom" option string, limited to a page. */
static int kernel_mount_legacy(const struct ovl_mount_opts *o, struct qerr *err)
{
	struct buf b = {0};
	buf_printf(&b, "lowerdir=");
	for (size_t i = o->nlower; i-- > 0;)
		buf_printf(&b, "%s%s", o->lowers[i], i ? ":" : "");
	if (o->upper)
		buf_printf(&b, ",upperdir=%s,workdir=%s", o->upper, o->work);
	buf_printf(&b, ",userxattr");
	int rc = mount("overlay", o->target, "overlay", o->upper ? 0 : MS_RDONLY, b.p);
	if (rc < 0)
		qerr_sys(err, "overlay on %s: mount (%zu layers, legacy option string)", o->target, o->nlower);
	buf_free(&b);
	return rc;
}

static int kernel_mount(const struct ovl_mount_opts *o, struct qerr *err)
{
	autoclose int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return qerr_sys(err, "overlay on %s: fsopen(overlay) (is the overlay module available?)", o->target);
	/* lowerdir+ stacks each new entry below the previous ones: give the top-most layer first. */
	for (size_t i = o->nlower; i-- > 0;) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", o->lowers[i], 0) == 0)
			continue;
		if (errno == EINVAL && i == o->nlower - 1)
			return kernel_mount_legacy(o, err);
		autofree char *what = xasprintf("lowerdir+=%s", o->lowers[i]);
		return fs_fail(err, fsfd, what, o->target);
	}
	if (o->upper && (set_str(fsfd, "upperdir", o->upper, o->target, err) < 0 ||
	                 set_str(fsfd, "workdir", o->work, o->target, err) < 0))
		return -1;
	/* Opaque dirs are marked user.overlay.opaque by the unpacker: the only kind usable in a user namespace. */
	if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return fs_fail(err, fsfd, "userxattr", o->target);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return fs_fail(err, fsfd, "create", o->target);
	autoclose int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, o->upper ? 0 : MOUNT_ATTR_RDONLY);
	if (mfd < 0)
		return fs_fail(err, fsfd, "fsmount", o->target);
	return attach(mfd, o->target, err);
}

/* A pure-lower overlay needs two lowers: one layer read-only is a read-only bind of its dir. */
static int bind_ro(const char *dir, const char *target, struct qerr *err)
{
	autoclose int tfd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tfd < 0)
		return qerr_sys(err, "overlay: bind %s", dir);
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	if (mount_setattr(tfd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
		return qerr_sys(err, "overlay: make bind of %s read-only", dir);
	return attach(tfd, target, err);
}

/* fuse-overlayfs: $PATH, then the usual places. Caller frees. */
static char *fuse_exe(void)
{
	return path_find(FUSE_OVERLAYFS, "/usr/bin:/bin");
}

/* fuse-overlayfs splits its option on ',' and lowerdir on ':'. */
static int fuse_check_path(const char *p, struct qerr *err)
{
	if (strpbrk(p, ":,\\"))
		return qerr_set(err, "fuse-overlayfs: path %s contains ':', ',' or '\\'", p);
	return 0;
}

static char *fuse_options(const struct ovl_mount_opts *o, struct qerr *err)
{
	struct buf b = {0};
	buf_printf(&b, "lowerdir=");
	/* Like the kernel's lowerdir: left-most is the top layer. */
	for (size_t i = o->nlower; i-- > 0;) {
		if (fuse_check_path(o->lowers[i], err) < 0)
			goto fail;
		buf_printf(&b, "%s%s", o->lowers[i], i ? ":" : "");
	}
	if (o->upper) {
		if (fuse_check_path(o->upper, err) < 0 || fuse_check_path(o->work, err) < 0)
			goto fail;
		buf_printf(&b, ",upperdir=%s,workdir=%s", o->upper, o->work);
	}
	return b.p;
fail:
	buf_free(&b);
	return NULL;
}

/* Run fuse-overlayfs; it returns once the mount is up (the daemon stays behind, a child of our init). */
static int fuse_mount(const struct ovl_mount_opts *o, struct qerr *err)
{
	autofree char *exe = fuse_exe();
	if (!exe)
		return qerr_set(err, "overlay: fuse-overlayfs not found (install the fuse-overlayfs package)");
	autofree char *opts = fuse_options(o, err);
	if (!opts)
		return -1;
	char *argv[] = {exe, "-o", opts, (char *)o->target, NULL};
	pid_t pid = fork();
	if (pid < 0)
		return qerr_sys(err, "fuse-overlayfs: fork");
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL); /* the runner blocks the signals it forwards */
		int null = qlog_level < LOG_VERBOSE ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
		if (null >= 0) /* its chatter ("unknown argument ignored: lazytime") would mix with the container's */
			(void)(dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0);
		execv(exe, argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "fuse-overlayfs: wait");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return qerr_set(err, "overlay: fuse-overlayfs on %s failed (status %d; is /dev/fuse usable?)",
		                o->target, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	struct statfs sf;
	if (statfs(o->target, &sf) < 0)
		return qerr_sys(err, "overlay: statfs %s", o->target);
	if (sf.f_type != FUSE_SUPER_MAGIC)
		return qerr_set(err, "overlay: fuse-overlayfs exited but %s is not a fuse mount", o->target);
	return 0;
}

int ovl_mount(const struct ovl_mount_opts *o, struct qerr *err)
{
	if (o->nlower == 0)
		return qerr_set(err, "overlay on %s: no layers", o->target);
	if (o->upper && !o->work)
		return qerr_set(err, "overlay on %s: upper without work dir", o->target);
	if (o->kind == OVL_FUSE)
		return fuse_mount(o, err);
	if (!o->upper && o->nlower == 1)
		return bind_ro(o->lowers[0], o->target, err);
	return kernel_mount(o, err);
}
