/* `qimg export`: flatten an image's layer dirs (bottom first) into one plain tree, applying whiteouts and opaque dirs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../userns/userns.h"
#include "internal.h"
#include "overlay.h"

#define COPY_CHUNK         ((size_t)1 << 20)
#define XATTR_LIST_MAX_LEN 65536

/* A file of the current layer with several links, and where its first copy went. */
struct hlink {
	dev_t dev;
	ino_t ino;
	char *dest; /* relative to the export root */
};

struct xp {
	const char *layer; /* label for messages */
	int rootfd;        /* the export root */
	bool own;
	uid_t ouid;
	gid_t ogid;
	char path[PATH_MAX]; /* current relative path (for messages and hardlinks) */
	size_t plen;
	struct hlink *links;
	size_t nlinks, caplinks;
	int64_t skipped;
	bool xattr_warned;
	struct qerr *err;
};

static int xp_fail(struct xp *x, const char *what)
{
	return qerr_sys(x->err, "export: layer %s: %s: %s", x->layer, x->plen ? x->path : "/", what);
}

static int path_push(struct xp *x, const char *name)
{
	size_t n = strlen(name);
	if (x->plen + n + 2 > sizeof x->path) {
		errno = ENAMETOOLONG;
		return xp_fail(x, name);
	}
	if (x->plen)
		x->path[x->plen++] = '/';
	memcpy(x->path + x->plen, name, n + 1);
	x->plen += n;
	return 0;
}

static void path_pop(struct xp *x, size_t len)
{
	x->plen = len;
	x->path[len] = '\0';
}

/* Remove every entry of an open directory (an opaque dir of an upper layer hides all below it). */
static int empty_dir(struct xp *x, int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return xp_fail(x, "open directory");
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			rc = rm_rf_at(dfd, e->d_name, x->err);
	if (rc == 0 && errno)
		rc = xp_fail(x, "read directory");
	closedir(d);
	return rc;
}

static void warn_xattr(struct xp *x, const char *name, const char *why)
{
	if (x->xattr_warned)
		return;
	x->xattr_warned = true;
	log_warn("export: %s: xattr %s not copied: %s (further xattr warnings suppressed)", x->path, name, why);
}

/* Copy the image's xattrs (never an overlay's own marks). */
static void copy_xattrs(struct xp *x, int sfd, int dfd)
{
	char *list = xmalloc(XATTR_LIST_MAX_LEN), *val = xmalloc(XATTR_LIST_MAX_LEN);
	ssize_t n = flistxattr(sfd, list, XATTR_LIST_MAX_LEN);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
		const char *name = list + i;
		if (ovl_xattr_reserved(name) || !ovl_xattr_allowed(name))
			continue;
		ssize_t vn = fgetxattr(sfd, name, val, XATTR_LIST_MAX_LEN);
		if (vn < 0 || fsetxattr(dfd, name, val, (size_t)vn, 0) < 0)
			warn_xattr(x, name, strerror(errno));
	}
	free(list);
	free(val);
}

static int chown_fd(struct xp *x, int fd, const struct stat *sb)
{
	uid_t uid = x->own ? x->ouid : sb->st_uid;
	gid_t gid = x->own ? x->ogid : sb->st_gid;
	if (fchown(fd, uid, gid) == 0)
		return 0;
	if (errno == EINVAL)
		return qerr_set(x->err, "export: layer %s: %s: owner %u:%u is not mapped in the user namespace",
		                x->layer, x->path, (unsigned)uid, (unsigned)gid);
	return xp_fail(x, "chown");
}

/* Owner, mode (after the chown, which clears set-id bits), xattrs, times. */
static int apply_meta(struct xp *x, int sfd, int dfd, const struct stat *sb)
{
	if (chown_fd(x, dfd, sb) < 0)
		return -1;
	if (fchmod(dfd, sb->st_mode & 07777) < 0)
		return xp_fail(x, "chmod");
	if (sfd >= 0)
		copy_xattrs(x, sfd, dfd);
	struct timespec ts[2] = {sb->st_atim, sb->st_mtim};
	if (futimens(dfd, ts) < 0)
		return xp_fail(x, "set times");
	return 0;
}

/* Copy [start, end) of in to the same offsets of out: copy_file_range, else pread/pwrite. */
static int copy_range(struct xp *x, int in, int out, off_t start, off_t end)
{
	off_t ip = start, op = start;
	while (ip < end) {
		size_t want = (size_t)(end - ip) < COPY_CHUNK ? (size_t)(end - ip) : COPY_CHUNK;
		ssize_t n = copy_file_range(in, &ip, out, &op, want, 0);
		if (n > 0)
			continue;
		if (n == 0)
			return qerr_set(x->err, "export: layer %s: %s: the file shrank while it was copied", x->layer,
			                x->path);
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM)
			return xp_fail(x, "copy");
		break;
	}
	char *buf = ip < end ? xmalloc(COPY_CHUNK) : NULL;
	int rc = 0;
	while (rc == 0 && ip < end) {
		size_t want = (size_t)(end - ip) < COPY_CHUNK ? (size_t)(end - ip) : COPY_CHUNK;
		ssize_t n = pread(in, buf, want, ip);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			rc = qerr_set(x->err, "export: layer %s: %s: the file shrank while it was copied", x->layer,
			              x->path);
		else if (n < 0 || pwrite_all(out, buf, (size_t)n, ip) < 0)
			rc = xp_fail(x, n < 0 ? "read" : "write");
		else
			ip += n;
	}
	free(buf);
	return rc;
}

/* Copy a file's data regions only (SEEK_DATA/SEEK_HOLE), so its holes stay holes: a sparse file of 60 GB apparent
   size and a few KB of data costs a few KB, as in the layer. Then out gets in's size (a trailing hole). */
static int copy_data(struct xp *x, int in, int out, off_t size)
{
	off_t pos = 0, start, end;
	int r;
	while ((r = fd_data_next(in, pos, size, &start, &end)) > 0) {
		if (copy_range(x, in, out, start, end) < 0)
			return -1;
		pos = end;
	}
	if (r < 0)
		return xp_fail(x, "find data (SEEK_DATA)");
	if (ftruncate(out, size) < 0)
		return xp_fail(x, "set size");
	return 0;
}

/* Link dfd/name to where the first copy of this inode went; false when that copy is gone (then copy). */
static bool link_again(struct xp *x, const struct stat *sb, int dfd, const char *name)
{
	for (size_t i = 0; i < x->nlinks; i++) {
		struct hlink *h = &x->links[i];
		if (h->dev != sb->st_dev || h->ino != sb->st_ino)
			continue;
		char *slash = strrchr(h->dest, '/');
		int pfd = slash ? (*slash = '\0', openat_beneath(x->rootfd, h->dest, O_PATH | O_DIRECTORY))
		                : fcntl(x->rootfd, F_DUPFD_CLOEXEC, 0);
		if (slash)
			*slash = '/';
		if (pfd < 0)
			return false;
		int r = linkat(pfd, slash ? slash + 1 : h->dest, dfd, name, 0);
		close(pfd);
		return r == 0;
	}
	return false;
}

static void remember_link(struct xp *x, const struct stat *sb)
{
	if (x->nlinks == x->caplinks) {
		x->caplinks = x->caplinks ? 2 * x->caplinks : 64;
		x->links = xrealloc(x->links, x->caplinks * sizeof *x->links);
	}
	x->links[x->nlinks++] = (struct hlink){sb->st_dev, sb->st_ino, xstrdup(x->path)};
}

static int copy_file(struct xp *x, int sdir, int ddir, const char *name, const struct stat *sb)
{
	if (sb->st_nlink > 1 && link_again(x, sb, ddir, name))
		return 0;
	autoclose int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return xp_fail(x, "open");
	autoclose int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return xp_fail(x, "create");
	if (copy_data(x, in, out, sb->st_size) < 0 || apply_meta(x, in, out, sb) < 0)
		return -1;
	if (sb->st_nlink > 1)
		remember_link(x, sb);
	return 0;
}

static int copy_symlink(struct xp *x, int sdir, int ddir, const char *name, const struct stat *sb)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(sdir, name, target, sizeof target);
	if (n < 0 || (size_t)n >= sizeof target)
		return xp_fail(x, "readlink");
	target[n] = '\0';
	if (symlinkat(target, ddir, name) < 0)
		return xp_fail(x, "symlink");
	uid_t uid = x->own ? x->ouid : sb->st_uid;
	gid_t gid = x->own ? x->ogid : sb->st_gid;
	if (fchownat(ddir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return xp_fail(x, "chown");
	struct timespec ts[2] = {sb->st_atim, sb->st_mtim};
	if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return xp_fail(x, "set times");
	return 0;
}

static int copy_fifo(struct xp *x, int sdir, int ddir, const char *name, const struct stat *sb)
{
	if (mkfifoat(ddir, name, 0600) < 0)
		return xp_fail(x, "mkfifo");
	autoclose int in = openat(sdir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	autoclose int out = openat(ddir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0)
		return xp_fail(x, "open fifo");
	return apply_meta(x, in, out, sb);
}

static int copy_dir(struct xp *x, int sdir, int ddir);

/* A directory of this layer: replaces a non-dir below, empties the dir below when opaque, else merges. */
static int copy_subdir(struct xp *x, int sdir, int ddir, const char *name, const struct stat *sb)
{
	autoclose int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s < 0)
		return xp_fail(x, "open");
	char v[2];
	bool opaque = fgetxattr(s, OVL_OPAQUE_XATTR, v, sizeof v) == 1 && v[0] == OVL_OPAQUE_VALUE[0];
	struct stat db;
	bool exists = fstatat(ddir, name, &db, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && !S_ISDIR(db.st_mode)) {
		if (unlinkat(ddir, name, 0) < 0)
			return xp_fail(x, "remove");
		exists = false;
	}
	if (!exists && mkdirat(ddir, name, 0700) < 0)
		return xp_fail(x, "mkdir");
	autoclose int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return xp_fail(x, "open");
	if (exists && opaque && empty_dir(x, d) < 0)
		return -1;
	if (copy_dir(x, s, d) < 0)
		return -1;
	return apply_meta(x, s, d, sb); /* times after the children */
}

static int copy_entry(struct xp *x, int sdir, int ddir, const char *name)
{
	struct stat sb;
	if (fstatat(sdir, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return xp_fail(x, "stat");
	if (ovl_is_whiteout(&sb)) /* deletes what the layers below put here */
		return rm_rf_at(ddir, name, x->err);
	if (S_ISDIR(sb.st_mode))
		return copy_subdir(x, sdir, ddir, name, &sb);
	if (rm_rf_at(ddir, name, x->err) < 0)
		return -1;
	if (S_ISREG(sb.st_mode))
		return copy_file(x, sdir, ddir, name, &sb);
	if (S_ISLNK(sb.st_mode))
		return copy_symlink(x, sdir, ddir, name, &sb);
	if (S_ISFIFO(sb.st_mode))
		return copy_fifo(x, sdir, ddir, name, &sb);
	x->skipped++; /* devices and sockets are not image content (the unpacker never makes them) */
	return 0;
}

static int copy_dir(struct xp *x, int sdir, int ddir)
{
	int fd = openat(sdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return xp_fail(x, "open directory");
	}
	size_t len = x->plen;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rc = path_push(x, e->d_name);
		if (rc == 0)
			rc = copy_entry(x, sdir, ddir, e->d_name);
		path_pop(x, len);
	}
	if (rc == 0 && errno)
		rc = xp_fail(x, "read directory");
	closedir(d);
	return rc;
}

static void links_reset(struct xp *x)
{
	for (size_t i = 0; i < x->nlinks; i++)
		free(x->links[i].dest);
	x->nlinks = 0;
}

static int export_layers(struct store *st, const struct image_spec *spec, int rootfd, bool own, struct qerr *err)
{
	struct xp x = {.rootfd = rootfd, .own = own, .ouid = getuid(), .ogid = getgid(), .err = err};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < spec->layers.n; i++) {
		const char *id = spec->layers.v[i];
		autofree char *rel = xasprintf("layers/%s", id);
		autoclose int lfd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char label[13];
		snprintf(label, sizeof label, "%s", id);
		x.layer = label;
		struct stat sb;
		if (lfd < 0 || fstat(lfd, &sb) < 0) {
			rc = qerr_sys(err, "export: open layer %s", id);
			break;
		}
		char v[2];
		if (fgetxattr(lfd, OVL_OPAQUE_XATTR, v, sizeof v) == 1 && v[0] == OVL_OPAQUE_VALUE[0])
			rc = empty_dir(&x, rootfd);
		if (rc == 0)
			rc = copy_dir(&x, lfd, rootfd);
		if (rc == 0)
			rc = apply_meta(&x, lfd, rootfd, &sb);
		links_reset(&x); /* hardlinks never span layers */
	}
	free(x.links);
	if (rc == 0 && x.skipped)
		log_warn("export: skipped %lld device/socket entries", (long long)x.skipped);
	return rc;
}

struct export_job {
	struct store *st;
	const struct image_spec *spec;
	const char *dest;
	bool own;
};

/* In the child, inside the user namespace (userns_call): copy, and on failure leave dest empty. */
static int export_child(void *arg, struct qerr *err)
{
	const struct export_job *j = arg;
	umask(0);
	nofile_raise();
	autoclose int rootfd = open(j->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		return qerr_sys(err, "export: open %s", j->dest);
	if (export_layers(j->st, j->spec, rootfd, j->own, err) == 0)
		return 0;
	struct xp cleanup = {.rootfd = rootfd, .err = &(struct qerr){0}};
	empty_dir(&cleanup, rootfd);
	return -1;
}

/* dest: created, or an existing empty directory. *created tells which. */
static int prepare_dest(const char *dest, bool *created, struct qerr *err)
{
	*created = false;
	if (mkdir(dest, 0755) == 0) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return qerr_sys(err, "export: mkdir %s", dest);
	DIR *d = opendir(dest);
	if (!d)
		return qerr_sys(err, "export: %s", dest);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	if (n)
		return qerr_set(err, "export: %s is not empty", dest);
	return 0;
}

int ovl_export_dir(struct store *st, const struct image_spec *spec, const char *dest, bool own, struct qerr *err)
{
	for (size_t i = 0; i < spec->layers.n; i++)
		if (!store_layer_exists(st, spec->layers.v[i]))
			return qerr_set(err, "export: layer %s is missing from the store (pull the image again)",
			                spec->layers.v[i]);
	bool created;
	if (prepare_dest(dest, &created, err) < 0)
		return -1;
	struct export_job job = {st, spec, dest, own};
	if (userns_call(st->rootless, "export", export_child, &job, err) == 0)
		return 0;
	if (created)
		rmdir(dest);
	return -1;
}
