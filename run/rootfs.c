/* The container's filesystem, built by PID 1 in its own mount namespace: tmpfs, overlay root, /proc, /dev, /sys,
   /etc files, -v binds, pivot_root. Container-side paths are resolved with openat2 inside the new root only. */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include "../lib/mountapi.h"
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define IN_ROOT            (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define RUN_TMP            "tmp"   /* the store's tmp/: the run tmpfs is mounted over it, in our namespace only */
#define RUN_ROOT           "tmp/r" /* overlay target */
#define RUN_UPPER          "tmp/u"
#define RUN_WORK           "tmp/w"
#define RUN_STUB           "tmp/s" /* the stub layer: mount points and /etc files */
#define OPENAT2_RETRIES    128
#define SYMLINK_DEPTH_MAX  40
#define HOST_FILE_MAX      (1u << 20)
#define CONTAINER_FILE_MAX (8u << 20)

static int openat2_fd(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve};
	int fd, tries = 0;
	/* EAGAIN: a rename somewhere raced with a ".." lookup under RESOLVE_IN_ROOT; the kernel asks to retry. */
	while ((fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how)) < 0 && errno == EAGAIN &&
	       ++tries < OPENAT2_RETRIES)
		;
	return fd;
}

/* A new detached filesystem; opts are "key=value" or "flag". Returns the mount fd (its root). */
static int fs_new(const char *type, const char *const *opts, unsigned attrs, struct qerr *err)
{
	autoclose int fsfd = fsopen(type, FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return qerr_sys(err, "mount %s: fsopen", type);
	for (; opts && *opts; opts++) {
		const char *eq = strchr(*opts, '=');
		int rc;
		if (eq) {
			char key[64];
			snprintf(key, sizeof key, "%.*s", (int)(eq - *opts), *opts);
			rc = fsconfig(fsfd, FSCONFIG_SET_STRING, key, eq + 1, 0);
		} else {
			rc = fsconfig(fsfd, FSCONFIG_SET_FLAG, *opts, NULL, 0);
		}
		if (rc < 0)
			return qerr_sys(err, "mount %s: option %s", type, *opts);
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return qerr_sys(err, "mount %s", type);
	int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
	if (mfd < 0)
		return qerr_sys(err, "mount %s: fsmount", type);
	return mfd;
}

/* Attach the detached mount mfd at dirfd/path ("" = on dirfd itself). */
static int attach(int mfd, int dirfd, const char *path, const char *what, struct qerr *err)
{
	unsigned flags = MOVE_MOUNT_F_EMPTY_PATH | (*path ? 0 : MOVE_MOUNT_T_EMPTY_PATH);
	if (move_mount(mfd, "", dirfd, path, flags) < 0)
		return qerr_sys(err, "mount %s", what);
	return 0;
}

/* A detached bind of dirfd/path ("" = dirfd), optionally recursive, with attributes added. */
static int bind_tree(int dirfd, const char *path, bool recursive, unsigned attr_set, const char *what, struct qerr *err)
{
	unsigned flags =
	    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) | (*path ? 0 : AT_EMPTY_PATH);
	int tfd = open_tree(dirfd, path, flags);
	if (tfd < 0)
		return qerr_sys(err, "bind %s", what);
	if (attr_set) {
		struct mount_attr a = {.attr_set = attr_set};
		if (mount_setattr(tfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a) < 0) {
			close(tfd);
			return qerr_sys(err, "bind %s: set mount attributes", what);
		}
	}
	return tfd;
}

/* Mount tree tfd (consumed) on dirfd/path. */
static int attach_close(int tfd, int dirfd, const char *path, const char *what, struct qerr *err)
{
	int rc = attach(tfd, dirfd, path, what, err);
	close(tfd);
	return rc;
}

/* One top-level directory of the new root to mount on: created if missing, never a symlink. */
static int mountpoint_dir(int rootfd, const char *name, struct qerr *err)
{
	int fd = openat2_fd(rootfd, name, O_PATH | O_DIRECTORY, IN_ROOT | RESOLVE_NO_SYMLINKS);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(rootfd, name, 0755) < 0 && errno != EEXIST)
			return qerr_sys(err, "create /%s in the container", name);
		fd = openat2_fd(rootfd, name, O_PATH | O_DIRECTORY, IN_ROOT | RESOLVE_NO_SYMLINKS);
	}
	if (fd >= 0)
		return fd;
	if (errno == ELOOP || errno == ENOTDIR)
		return qerr_set(err, "the image's /%s is not a directory (symlink?): refusing to mount over it", name);
	return qerr_sys(err, "open /%s in the container", name);
}

static int in_root_make_depth(int rootfd, const char *path, bool dir, int depth, struct qerr *err);

/* base (in the resolved parent pfd) is a dangling symlink: create what it points at, inside the root. */
static int in_root_follow(int rootfd, int pfd, const char *parent, const char *base, bool dir, int depth,
                          struct qerr *err)
{
	char target[4096];
	ssize_t n = readlinkat(pfd, base, target, sizeof target - 1);
	if (n < 0)
		return -2; /* not a symlink */
	if (depth >= SYMLINK_DEPTH_MAX) {
		errno = ELOOP;
		return qerr_sys(err, "resolve %s/%s in the container", parent, base);
	}
	target[n] = '\0';
	autofree char *next = target[0] == '/' ? xstrdup(target) : xasprintf("%s/%s", parent, target);
	return in_root_make_depth(rootfd, next, dir, depth + 1, err);
}

static int in_root_make_depth(int rootfd, const char *path, bool dir, int depth, struct qerr *err)
{
	int fd = openat2_fd(rootfd, path, O_PATH, IN_ROOT);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : qerr_sys(err, "open %s in the container", path);
	autofree char *parent = xstrdup(path);
	size_t len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	char *slash = strrchr(parent, '/');
	autofree char *base = xstrdup(slash ? slash + 1 : parent);
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return qerr_set(err, "invalid path %s in the container", path);
	if (slash)
		slash[slash == parent ? 1 : 0] = '\0';
	else
		strcpy(parent, "/");
	autoclose int pfd = in_root_make_depth(rootfd, parent, true, depth, err);
	if (pfd < 0)
		return -1;
	fd = in_root_follow(rootfd, pfd, parent, base, dir, depth, err);
	if (fd != -2)
		return fd;
	int rc = dir ? mkdirat(pfd, base, 0755)
	             : openat(pfd, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (rc < 0 && errno != EEXIST)
		return qerr_sys(err, "create %s in the container", path);
	if (!dir && rc >= 0)
		close(rc);
	fd = openat2_fd(pfd, base, O_PATH, IN_ROOT | RESOLVE_NO_SYMLINKS);
	if (fd < 0)
		return qerr_sys(err, "open %s in the container", path);
	return fd;
}

/* Open path inside the new root (symlinks resolved as if it were /), creating it (dir or empty file), its
   parents and the targets of dangling symlinks when missing. Returns an O_PATH fd. */
static int in_root_make(int rootfd, const char *path, bool dir, struct qerr *err)
{
	return in_root_make_depth(rootfd, path, dir, 0, err);
}

int rootfs_private(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	(void)r;
	/* Rootless, our mount namespace belongs to the keeper's user namespace, not to the host's: the kernel made
	   every shared mount a slave when it copied the tree, so nothing we mount can reach the host, and the
	   recursive remount (~0.25 ms, once per host mount) is not needed. As root the copies stay in the host's
	   peer groups and must be made private first. */
	if (in->rootless)
		return 0;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return qerr_sys(err, "make / private");
	return 0;
}

static void etc_contents(struct run_init *in, char **hosts, char **hostname, char **resolv);

/* The image's /etc as the top-most layer that has it shows it: 1 a directory (sb filled), 0 none (or whited out),
   -1 something else (a symlink: then the stub layer must not shadow it). */
static int image_etc(struct run_init *in, struct stat *sb)
{
	for (size_t i = in->lowers.n; i-- > 0;) {
		autofree char *p = xasprintf("%s/etc", in->lowers.v[i]);
		if (lstat(p, sb) < 0)
			continue;
		if (S_ISCHR(sb->st_mode) && sb->st_rdev == 0)
			return 0; /* whiteout */
		return S_ISDIR(sb->st_mode) ? 1 : -1;
	}
	return 0;
}

/* An image path below /etc (relative, e.g. "etc/apt") as the top-most layer that has it shows it: 1 a directory
   (sb filled), 0 none, -1 anything else - a whiteout or file on the way, or a symlink anywhere (never followed). */
static int image_dir(struct run_init *in, const char *path, struct stat *sb)
{
	for (size_t i = in->lowers.n; i-- > 0;) {
		autofree char *p = xasprintf("%s/%s", in->lowers.v[i], path);
		autoclose int fd = openat_beneath(AT_FDCWD, p, O_PATH | O_DIRECTORY);
		if (fd < 0 && errno == ENOENT)
			continue;
		return fd >= 0 && fstat(fd, sb) == 0 ? 1 : -1;
	}
	return 0;
}

static int stub_file(int tmpfd, const char *name, const char *data, struct qerr *err)
{
	autoclose int fd = openat(tmpfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, data, strlen(data)) < 0)
		return qerr_sys(err, "write %s on the run tmpfs", name);
	return 0;
}

#define APT_SNIPPET "s/etc/apt/apt.conf.d/00qimg-single-id"

/* Single-id mode: apt drops to its sandbox user _apt and then checks that getuid() changed, which the emulation
   cannot make true: a snippet in the stub layer (the run's tmpfs; the image is not changed) keeps it root. Only
   where the image has /etc/apt/apt.conf.d as a directory (the stub's dirs, with the image's modes and owners,
   merge with it; anything else there is left alone). */
static int stub_apt(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	static const char *const dirs[] = {"etc/apt", "etc/apt/apt.conf.d", NULL};
	struct stat sb[2];
	for (int i = 0; dirs[i]; i++)
		if (image_dir(in, dirs[i], &sb[i]) != 1)
			return 0;
	for (int i = 0; dirs[i]; i++) {
		autofree char *d = xasprintf("s/%s", dirs[i]);
		if (mkdirat(r->tmpfd, d, 0755) < 0 || fchmodat(r->tmpfd, d, sb[i].st_mode & 07777, 0) < 0 ||
		    fchownat(r->tmpfd, d, sb[i].st_uid, sb[i].st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			return qerr_sys(err, "run tmpfs: %s for the apt snippet", d);
	}
	return stub_file(r->tmpfd, APT_SNIPPET,
	                 "// qimg, single-id mode: apt cannot drop to _apt (there is no other id), so it stays root.\n"
	                 "APT::Sandbox::User \"root\";\n",
	                 err);
}

/* The stub layer (tmp/s), stacked over the image: the mount points /dev /proc /sys and the generated /etc/hosts,
   /etc/hostname, /etc/resolv.conf. The image is never written for them, no bind mount is needed, and whatever the
   image has there (a symlink to /etc/passwd, say) is shadowed, never followed. */
static int stub_make(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	struct stat etc;
	int have = image_etc(in, &etc);
	if (have < 0)
		return 0; /* /etc is not a directory in the image: rootfs_etc_binds binds the files instead */
	static const char *const dirs[] = {"s", "s/dev", "s/proc", "s/sys", "s/etc", NULL};
	for (const char *const *d = dirs; *d; d++)
		if (mkdirat(r->tmpfd, *d, 0755) < 0)
			return qerr_sys(err, "run tmpfs: mkdir %s", *d);
	if (have && (fchmodat(r->tmpfd, "s/etc", etc.st_mode & 07777, 0) < 0 ||
	             fchownat(r->tmpfd, "s/etc", etc.st_uid, etc.st_gid, AT_SYMLINK_NOFOLLOW) < 0))
		return qerr_sys(err, "run tmpfs: give s/etc the image's /etc mode and owner");
	autofree char *hosts = NULL, *hostname = NULL, *resolv = NULL;
	etc_contents(in, &hosts, &hostname, &resolv);
	if (stub_file(r->tmpfd, "s/etc/hosts", hosts, err) < 0 ||
	    stub_file(r->tmpfd, "s/etc/hostname", hostname, err) < 0 ||
	    stub_file(r->tmpfd, "s/etc/resolv.conf", resolv, err) < 0)
		return -1;
	if (in->single_id && have && stub_apt(in, r, err) < 0)
		return -1;
	r->stub = true;
	return 0;
}

/* A kept upper may hold the container's own copies (or whiteouts) of the generated files: they would hide the
   stub's fresh ones. Like docker, every start regenerates them. The upper is the container's: its etc may be a
   symlink to anywhere or not a directory at all, and the names may be symlinks or directory trees, so etc is
   opened beneath the upper without following anything, and each name is removed as what it is, never followed. */
static int kept_etc_reset(struct run_init *in, struct qerr *err)
{
	static const char *const names[] = {"hosts", "hostname", "resolv.conf", NULL};
	autofree char *rel = xasprintf("%s/etc", in->upper);
	autoclose int etc = openat_beneath(AT_FDCWD, rel, O_PATH | O_DIRECTORY);
	if (etc < 0) {
		/* No etc, or one that is not a directory (a symlink, a file): the container's /etc is not the stub's.
		 */
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0;
		return qerr_sys(err, "open the kept container's etc (%s)", rel);
	}
	for (const char *const *n = names; *n; n++)
		if (rm_rf_at(etc, *n, err) < 0)
			return qerr_wrap(err, "reset %s/%s: ", rel, *n);
	return 0;
}

/* The run's scratch space: vanishes with the mount namespace, however qimg ends. */
int rootfs_tmpfs(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	static const char *const opts[] = {"mode=0700", NULL};
	/* From here on the store is the working directory: short relative layer paths (fsconfig takes 256 bytes). */
	if (chdir(in->store_root) < 0)
		return qerr_sys(err, "chdir to the store %s", in->store_root);
	r->tmpfd = fs_new("tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err);
	if (r->tmpfd < 0)
		return -1;
	if (mkdirat(r->tmpfd, "r", 0755) < 0 ||
	    (!in->upper && (mkdirat(r->tmpfd, "u", 0755) < 0 || mkdirat(r->tmpfd, "w", 0700) < 0)))
		return qerr_sys(err, "run tmpfs: mkdir");
	return attach(r->tmpfd, AT_FDCWD, RUN_TMP, "run tmpfs", err);
}

/* The stub layer on the run tmpfs (stub_make), and a kept upper's stale copies of its /etc files removed. */
int rootfs_stub(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	if (stub_make(in, r, err) < 0)
		return -1;
	if (r->stub && in->upper && kept_etc_reset(in, err) < 0)
		return -1;
	return 0;
}

/* A fresh upper's root takes the mode and owner of the image's root (the merged root shows the upper's). */
static int upper_root_attrs(struct run_init *in, const char *top, const char *upper, struct qerr *err)
{
	struct stat sb;
	(void)in;
	if (stat(top, &sb) < 0)
		return qerr_sys(err, "layer %s", top);
	if (chmod(upper, sb.st_mode & 07777) < 0 || lchown(upper, sb.st_uid, sb.st_gid) < 0)
		return qerr_sys(err, "set the root's owner and mode on %s", upper);
	return 0;
}

static int fuse_detach(struct rootfs *r, struct qerr *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return qerr_sys(err, "unshare the mount namespace again (fuse)");
	close(r->tmpfd);
	r->tmpfd = open(RUN_TMP, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->tmpfd < 0)
		return qerr_sys(err, "reopen the run tmpfs");
	return 0;
}

int rootfs_overlay(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	const struct run_opts *o = in->o;
	size_t n = in->lowers.n;
	if (n == 0)
		return qerr_set(err, "the image has no layers");
	const char *upper = in->upper ? in->upper : RUN_UPPER;
	if ((!in->upper || in->upper_fresh) && upper_root_attrs(in, in->lowers.v[n - 1], upper, err) < 0)
		return -1;
	if (r->stub)
		strv_push(&in->lowers, RUN_STUB);
	struct ovl_mount_opts mo = {
	    .lowers = (const char *const *)in->lowers.v,
	    .nlower = in->lowers.n,
	    .upper = upper,
	    .work = in->work ? in->work : RUN_WORK,
	    .target = RUN_ROOT,
	    .kind = o->overlay,
	};
	if (ovl_mount(&mo, err) < 0)
		return err->code == ENOENT ? qerr_wrap(err, "a layer of the image is missing from the store (pull it "
		                                            "again): ")
		                           : -1;
	/* fuse-overlayfs's daemon lives in this mount namespace with the host root; pivot_root in a copy of it, or the
	   daemon's root would become the overlay it serves (and it would deadlock on its own requests). */
	if (o->overlay == OVL_FUSE && fuse_detach(r, err) < 0)
		return -1;
	r->rootfd = openat(r->tmpfd, "r", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->rootfd < 0)
		return qerr_sys(err, "open the new root");
	return 0;
}

/* As real root, hide what docker hides: kernel knobs stay read-only, leaky files read as empty. */
static int proc_mask(int procfd, struct qerr *err)
{
	static const char *const ro[] = {"bus", "fs", "irq", "sys", "sysrq-trigger", NULL};
	static const char *const masked[] = {"acpi",       "asound",      "kcore",       "keys", "latency_stats",
	                                     "timer_list", "timer_stats", "sched_debug", "scsi", NULL};
	struct stat sb;
	for (const char *const *p = ro; *p; p++) {
		if (fstatat(procfd, *p, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		unsigned attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
		int t = bind_tree(procfd, *p, true, attrs, *p, err);
		if (t < 0 || attach_close(t, procfd, *p, "read-only /proc entry", err) < 0)
			return -1;
	}
	for (const char *const *p = masked; *p; p++) {
		if (fstatat(procfd, *p, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		int t = S_ISDIR(sb.st_mode) ? fs_new("tmpfs", NULL, MOUNT_ATTR_RDONLY, err)
		                            : bind_tree(AT_FDCWD, "/dev/null", false, 0, "/dev/null", err);
		if (t < 0 || attach_close(t, procfd, *p, "mask on /proc entry", err) < 0)
			return -1;
	}
	return 0;
}

int rootfs_proc(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	autoclose int dfd = mountpoint_dir(r->rootfd, "proc", err);
	if (dfd < 0)
		return -1;
	/* The Slurm holder has no pid namespace of its own: a user namespace may not mount the host's, so bind it. */
	if (in->o->holder) {
		unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
		int t = bind_tree(AT_FDCWD, "/proc", true, attrs, "/proc", err);
		return t < 0 ? -1 : attach_close(t, dfd, "", "/proc", err);
	}
	autoclose int mfd = fs_new("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
	if (mfd < 0 || attach(mfd, dfd, "", "/proc", err) < 0)
		return -1;
	return in->rootless ? 0 : proc_mask(mfd, err);
}

static int dev_nodes(int devfd, struct qerr *err)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};
	for (const char *const *p = nodes; *p; p++) {
		int fd = openat(devfd, *p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0)
			return qerr_sys(err, "create /dev/%s", *p);
		close(fd);
		char host[32];
		snprintf(host, sizeof host, "/dev/%s", *p);
		int t = bind_tree(AT_FDCWD, host, false, 0, host, err); /* a device node: nosuid/noexec mean nothing */
		if (t < 0 || attach_close(t, devfd, *p, host, err) < 0)
			return -1;
	}
	return 0;
}

static int dev_pts(int devfd, struct qerr *err)
{
	static const char *const opts[] = {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL};
	static const char *const opts_nogid[] = {"newinstance", "ptmxmode=0666", "mode=0620", NULL};
	if (mkdirat(devfd, "pts", 0755) < 0)
		return qerr_sys(err, "create /dev/pts");
	unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
	int t = fs_new("devpts", opts, attrs, err);
	if (t < 0) /* gid 5 (tty) not mapped */
		t = fs_new("devpts", opts_nogid, attrs, err);
	if (t < 0 || attach_close(t, devfd, "pts", "/dev/pts", err) < 0)
		return -1;
	if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
		return qerr_sys(err, "create /dev/ptmx");
	return 0;
}

static int dev_tmpfs(int devfd, const char *name, const char *fstype, const char *const *opts, struct qerr *err)
{
	if (mkdirat(devfd, name, 0755) < 0)
		return qerr_sys(err, "create /dev/%s", name);
	int t = fs_new(fstype, opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err);
	if (t < 0)
		return qerr_wrap(err, "/dev/%s: ", name);
	return attach_close(t, devfd, name, name, err);
}

static int dev_links(int devfd, struct qerr *err)
{
	static const char *const links[][2] = {{"fd", "/proc/self/fd"},
	                                       {"stdin", "/proc/self/fd/0"},
	                                       {"stdout", "/proc/self/fd/1"},
	                                       {"stderr", "/proc/self/fd/2"},
	                                       {"core", "/proc/kcore"}};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlinkat(links[i][1], devfd, links[i][0]) < 0)
			return qerr_sys(err, "create /dev/%s", links[i][0]);
	return 0;
}

/* /dev/shm: a directory of the run tmpfs (a bind costs a fraction of a new tmpfs), noexec. */
static int dev_shm(int devfd, struct rootfs *r, struct qerr *err)
{
	if (mkdirat(devfd, "shm", 0755) < 0 || mkdirat(r->tmpfd, "shm", 0) < 0 ||
	    fchmodat(r->tmpfd, "shm", 01777, 0) < 0)
		return qerr_sys(err, "create /dev/shm");
	int t = bind_tree(r->tmpfd, "shm", false, MOUNT_ATTR_NOEXEC, "/dev/shm", err);
	return t < 0 ? -1 : attach_close(t, devfd, "shm", "/dev/shm", err);
}

/* A minimal /dev: a directory of the run tmpfs with the host's harmless device nodes bound in, its own devpts,
   shm and mqueue. Nothing of the image's /dev shows. */
int rootfs_dev(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	(void)in;
	autoclose int dfd = mountpoint_dir(r->rootfd, "dev", err);
	if (dfd < 0)
		return -1;
	if (mkdirat(r->tmpfd, "dev", 0755) < 0)
		return qerr_sys(err, "run tmpfs: mkdir dev");
	autoclose int mfd = bind_tree(r->tmpfd, "dev", false, MOUNT_ATTR_NOEXEC, "/dev", err);
	if (mfd < 0 || attach(mfd, dfd, "", "/dev", err) < 0)
		return -1;
	if (dev_nodes(mfd, err) < 0 || dev_pts(mfd, err) < 0 || dev_shm(mfd, r, err) < 0 ||
	    dev_tmpfs(mfd, "mqueue", "mqueue", NULL, err) < 0 || dev_links(mfd, err) < 0)
		return -1;
	return 0;
}

/* /sys read-only: a sysfs of our own when allowed (root, or rootless with its own network namespace), else a
   read-only recursive bind of the host's. */
int rootfs_sys(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	unsigned attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
	autoclose int dfd = mountpoint_dir(r->rootfd, "sys", err);
	if (dfd < 0)
		return -1;
	int t = -1;
	if (!in->rootless || in->o->net_none)
		t = fs_new("sysfs", NULL, attrs, err);
	if (t < 0)
		t = bind_tree(AT_FDCWD, "/sys", true, attrs, "/sys", err);
	if (t < 0 || attach_close(t, dfd, "", "/sys", err) < 0)
		return -1;
	struct stat sb;
	if (!in->rootless && fstatat(dfd, "firmware", &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		t = fs_new("tmpfs", NULL, MOUNT_ATTR_RDONLY, err);
		if (t < 0 || attach_close(t, dfd, "firmware", "mask on /sys/firmware", err) < 0)
			return -1;
	}
	return 0;
}

/* ---- /etc/hosts, /etc/hostname, /etc/resolv.conf: files on the run tmpfs, bound over the image's ---- */

static char *host_file(const char *path)
{
	struct qerr ignore;
	return read_file_at(AT_FDCWD, path, HOST_FILE_MAX, NULL, &ignore);
}

static void etc_contents(struct run_init *in, char **hosts, char **hostname, char **resolv)
{
	*hostname = xasprintf("%s\n", in->hostname);
	struct buf b = {0};
	autofree char *host_hosts = in->o->net_none ? NULL : host_file("/etc/hosts");
	if (host_hosts)
		buf_printf(&b, "%s%s", host_hosts,
		           *host_hosts && host_hosts[strlen(host_hosts) - 1] != '\n' ? "\n" : "");
	else
		buf_printf(&b, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	struct utsname u;
	if (!host_hosts || uname(&u) < 0 || strcmp(u.nodename, in->hostname) != 0)
		buf_printf(&b, "127.0.1.1\t%s\n", in->hostname);
	buf_append(&b, "", 1);
	*hosts = b.p;
	*resolv = host_file("/etc/resolv.conf");
	if (!*resolv)
		*resolv = xstrdup("");
}

static int tmp_write(int tmpfd, const char *name, const char *data, struct qerr *err)
{
	autoclose int fd = openat(tmpfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, data, strlen(data)) < 0)
		return qerr_sys(err, "write %s on the run tmpfs", name);
	return 0;
}

/* The image's /etc/NAME as a mount target: a regular file; a symlink or missing entry is replaced in the overlay
   by an empty file, so nothing is ever followed. */
static int etc_target(int etcfd, const char *name, struct qerr *err)
{
	struct stat sb;
	if (fstatat(etcfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(sb.st_mode))
			return openat(etcfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (S_ISDIR(sb.st_mode))
			return qerr_set(err, "the image's /etc/%s is a directory", name);
		if (unlinkat(etcfd, name, 0) < 0)
			return qerr_sys(err, "replace /etc/%s in the container", name);
	}
	int fd = openat(etcfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return qerr_sys(err, "create /etc/%s in the container", name);
	close(fd);
	fd = openat(etcfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : qerr_sys(err, "open /etc/%s in the container", name);
}

/* Only when the image's /etc is not a directory (no stub layer): the files are bound over the image's. */
int rootfs_etc_binds(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	if (r->stub)
		return 0;
	autofree char *hosts = NULL, *hostname = NULL, *resolv = NULL;
	etc_contents(in, &hosts, &hostname, &resolv);
	const char *const names[] = {"hosts", "hostname", "resolv.conf"};
	const char *const data[] = {hosts, hostname, resolv};
	autoclose int etcfd = in_root_make(r->rootfd, "/etc", true, err);
	if (etcfd < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (tmp_write(r->tmpfd, names[i], data[i], err) < 0)
			return -1;
		autoclose int target = etc_target(etcfd, names[i], err);
		if (target < 0)
			return -1;
		int t = bind_tree(r->tmpfd, names[i], false, 0, names[i], err);
		if (t < 0 || attach_close(t, target, "", names[i], err) < 0)
			return -1;
	}
	return 0;
}

/* -v HOST:CTR[:ro]: the host side is the user's own path; the container side is resolved inside the new root, so
   a symlink in the image cannot send the mount anywhere else. */
int rootfs_binds(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	for (size_t i = 0; i < in->o->nbinds; i++) {
		const struct run_bind *b = &in->o->binds[i];
		struct stat sb;
		const char *src = in->bind_srcs.v[i];
		if (stat(src, &sb) < 0)
			return qerr_sys(err, "-v %s", b->src);
		autoclose int target = in_root_make(r->rootfd, b->dst, S_ISDIR(sb.st_mode), err);
		if (target < 0)
			return qerr_wrap(err, "-v %s:%s: ", b->src, b->dst);
		int t = bind_tree(AT_FDCWD, src, true, b->ro ? MOUNT_ATTR_RDONLY : 0, b->src, err);
		if (t < 0 || attach_close(t, target, "", b->dst, err) < 0)
			return qerr_wrap(err, "-v %s:%s: ", b->src, b->dst);
	}
	return 0;
}

int rootfs_bind_in_root(struct rootfs *r, const char *src, const char *dst, bool recursive, unsigned attrs,
                        struct qerr *err)
{
	struct stat sb;
	if (stat(src, &sb) < 0)
		return qerr_sys(err, "%s", src);
	autoclose int target = in_root_make(r->rootfd, dst, S_ISDIR(sb.st_mode), err);
	if (target < 0)
		return -1;
	int t = bind_tree(AT_FDCWD, src, recursive, attrs, src, err);
	return t < 0 ? -1 : attach_close(t, target, "", dst, err);
}

int rootfs_pivot(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	if (fchdir(r->rootfd) < 0)
		return qerr_sys(err, "chdir to the new root");
	(void)in;
	/* pivot_root(".", "."): the old root ends up stacked on top of the new one (no put_old dir needed), and is
	   detached right away, before anything of the container runs. Not later: while it is stacked there, ".." at
	   the root steps onto the mount on top of the root's dentry - the host's / - so "/.." (or an image symlink
	   such as "../../x") would reach the host. (It used to be detached after the command's exec, to overlap the
	   detach with the exec; run_fs caught a run that read the host's directory through an image symlink.) */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return qerr_sys(err, "pivot_root");
	/* Our cwd is the new root's root: "." with the mount stacked on it is the old root. */
	if (umount2(".", MNT_DETACH) < 0)
		return qerr_sys(err, "detach the old root");
	close(r->rootfd);
	close(r->tmpfd);
	r->rootfd = r->tmpfd = -1;
	return 0;
}

int rootfs_readonly(struct run_init *in, struct rootfs *r, struct qerr *err)
{
	(void)r;
	if (!in->o->read_only)
		return 0;
	struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
	if (mount_setattr(AT_FDCWD, "/", 0, &a, sizeof a) < 0)
		return qerr_sys(err, "make the root read-only");
	return 0;
}

char *rootfs_read(const char *path, struct qerr *err)
{
	autoclose int fd = openat2_fd(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, RESOLVE_NO_MAGICLINKS);
	if (fd < 0) {
		qerr_sys(err, "open %s in the container", path);
		return NULL;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > CONTAINER_FILE_MAX) {
		qerr_set(err, "%s in the container is not a regular file of sane size", path);
		return NULL;
	}
	char *data = xmalloc((size_t)sb.st_size + 1);
	size_t len = 0;
	ssize_t n;
	while (len < (size_t)sb.st_size && (n = read(fd, data + len, (size_t)sb.st_size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(data);
			qerr_sys(err, "read %s in the container", path);
			return NULL;
		}
		len += (size_t)n;
	}
	data[len] = '\0';
	return data;
}

int rootfs_mkdir_p(const char *path, struct qerr *err)
{
	return mkdir_p(path, 0755, err);
}
