/* Unit tests of the layer unpacker on synthetic tarballs built here with libarchive: the path walk, whiteout
   conversion, entry types and metadata, compression, limits, hostile layers, parallel workers and cleanup. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include "../../overlay/overlay.h"
#include "../../store/store.h"
#include "noopenat2.h"
#include "t.h"

#define GZ    "application/vnd.oci.image.layer.v1.tar+gzip"
#define ZS    "application/vnd.oci.image.layer.v1.tar+zstd"
#define TAR   "application/vnd.oci.image.layer.v1.tar"
#define MTIME 1000000000

static char *tmproot;
static struct store st;

/* ---- building tarballs ---- */

struct tb {
	struct archive *a;
	char *mem;
	size_t cap, used;
};

static void tb_begin(struct tb *t)
{
	t->cap = 64 << 20;
	t->mem = malloc(t->cap);
	t->used = 0;
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	archive_write_open_memory(t->a, t->mem, t->cap, &t->used);
}

static void tb_entry(struct tb *t, int type, const char *path, const char *data, size_t len, int mode, int uid, int gid,
                     const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, (unsigned)type);
	archive_entry_set_perm(e, (mode_t)mode);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_mtime(e, MTIME, 0);
	if (type == AE_IFCHR || type == AE_IFBLK)
		archive_entry_set_rdev(e, data ? 0 : makedev(1, 3)); /* data != NULL: a 0:0 whiteout device */
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	archive_entry_set_size(e, type == AE_IFREG && !link ? (la_int64_t)len : 0);
	if (archive_write_header(t->a, e) != ARCHIVE_OK)
		fprintf(stderr, "tb_entry %s: %s\n", path, archive_error_string(t->a));
	if (len && type == AE_IFREG && !link)
		archive_write_data(t->a, data, len);
	archive_entry_free(e);
}

static void tb_file(struct tb *t, const char *path, const char *data, int mode)
{
	tb_entry(t, AE_IFREG, path, data, strlen(data), mode, 0, 0, NULL);
}
static void tb_dir(struct tb *t, const char *path, int mode)
{
	tb_entry(t, AE_IFDIR, path, NULL, 0, mode, 0, 0, NULL);
}
static void tb_sym(struct tb *t, const char *path, const char *target)
{
	tb_entry(t, AE_IFLNK, path, NULL, 0, 0777, 0, 0, target);
}
static void tb_link(struct tb *t, const char *path, const char *target)
{
	tb_entry(t, AE_IFREG, path, NULL, 0, 0644, 0, 0, target);
}

static size_t tb_end(struct tb *t)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	return t->used;
}

static void sha256_hex(const void *p, size_t n, char out[DIGEST_LEN + 1])
{
	unsigned char md[32];
	unsigned int len;
	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static char *gzip_mem(const char *p, size_t n, size_t *outn)
{
	size_t cap = n + (1 << 20), used = 0;
	char *out = malloc(cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_open_memory(a, out, cap, &used);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "x");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)n);
	archive_write_header(a, e);
	archive_write_data(a, p, n);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	*outn = used;
	return out;
}

/* A layer job for a blob stored from `blob` whose uncompressed form is `tar`. */
struct lj {
	char blob[DIGEST_LEN + 1], diff[DIGEST_LEN + 1];
	struct ovl_layer_job job;
};

static void store_blob(const char *p, size_t n, char digest[DIGEST_LEN + 1])
{
	struct qerr e = {0};
	char *name;
	sha256_hex(p, n, digest);
	int fd = store_tmp_file(&st, "blob", &name, &e);
	if (fd < 0 || write_all(fd, p, n) < 0 ||
	    (!store_blob_exists(&st, digest) && store_blob_commit(&st, fd, name, digest, &e) < 0))
		fprintf(stderr, "store_blob: %s\n", e.msg);
	if (store_blob_exists(&st, digest)) {
		char *rel = xasprintf("tmp/%s", name);
		unlinkat(st.rootfd, rel, 0);
		free(rel);
	}
	close(fd);
	free(name);
}

static void lj_make(struct lj *l, const char *tar, size_t n, const char *codec)
{
	sha256_hex(tar, n, l->diff);
	if (!strcmp(codec, GZ)) {
		size_t zn;
		char *z = gzip_mem(tar, n, &zn);
		store_blob(z, zn, l->blob);
		free(z);
	} else if (!strcmp(codec, ZS)) {
		size_t cap = ZSTD_compressBound(n);
		char *z = malloc(cap);
		size_t zn = ZSTD_compress(z, cap, tar, n, 3);
		store_blob(z, zn, l->blob);
		free(z);
	} else {
		store_blob(tar, n, l->blob);
	}
	l->job = (struct ovl_layer_job){l->blob, codec, l->diff, store_digest_hex(l->diff)};
}

/* ---- inspecting results ---- */

static int lfd(const struct lj *l)
{
	char *rel = xasprintf("layers/%s", l->job.layer_id);
	int fd = openat(st.rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(rel);
	return fd;
}

static bool has_file(const struct lj *l, const char *path, const char *content)
{
	int d = lfd(l);
	if (d < 0)
		return false;
	char *got = read_file_at(d, path, 1 << 20, NULL, &(struct qerr){0});
	close(d);
	bool ok = got && !strcmp(got, content);
	free(got);
	return ok;
}

static bool stat_in(const struct lj *l, const char *path, struct stat *sb)
{
	int d = lfd(l);
	if (d < 0)
		return false;
	bool ok = fstatat(d, path, sb, AT_SYMLINK_NOFOLLOW) == 0;
	close(d);
	return ok;
}

static bool is_whiteout(const struct lj *l, const char *path)
{
	struct stat sb;
	return stat_in(l, path, &sb) && S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(0, 0);
}

static bool is_opaque(const struct lj *l, const char *path)
{
	char v[4] = {0};
	char *abs = xasprintf("%s/layers/%s/%s", st.root, l->job.layer_id, path);
	ssize_t n = lgetxattr(abs, "user.overlay.opaque", v, sizeof v);
	free(abs);
	return n == 1 && v[0] == 'y';
}

static int count_dir(const char *rel)
{
	int n = 0;
	int fd = openat(st.rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static bool layer_absent(const struct lj *l)
{
	char *rel = xasprintf("layers/%s.json", l->job.layer_id);
	bool ok = !store_layer_exists(&st, l->job.layer_id) && faccessat(st.rootfd, rel, F_OK, 0) < 0;
	free(rel);
	return ok;
}

static int unpack1(struct lj *l, const struct ovl_unpack_limits *lim, struct qerr *e)
{
	*e = (struct qerr){0};
	return ovl_unpack_layers(&st, &l->job, 1, 0, lim, e);
}

/* ---- cases ---- */

static void test_basic(void)
{
	struct tb t;
	struct lj l;
	struct qerr e;
	tb_begin(&t);
	tb_dir(&t, "./", 0755);
	tb_dir(&t, "./etc/", 0755);
	tb_file(&t, "./etc/hostname", "layer\n", 0644);
	tb_file(&t, "/abs/file", "absolute name\n", 0600); /* parent created implicitly */
	tb_sym(&t, "etc/link", "/etc/hostname");
	tb_link(&t, "etc/hard", "etc/hostname");
	tb_entry(&t, AE_IFIFO, "etc/fifo", NULL, 0, 0620, 0, 0, NULL);
	tb_entry(&t, AE_IFREG, "bin/suid", "#!x\n", 4, 04755, 1000, 100, NULL);
	tb_entry(&t, AE_IFREG, "bin/none", "", 0, 0, 0, 0, NULL);
	tb_entry(&t, AE_IFCHR, "dev/null", NULL, 0, 0666, 0, 0, NULL); /* a device: skipped */
	tb_entry(&t, AE_IFBLK, "dev/sda", NULL, 0, 0660, 0, 0, NULL);
	tb_entry(&t, AE_IFCHR, "gone/wh-dev", "", 0, 0, 0, 0, NULL); /* already in overlay form */
	tb_dir(&t, "gone", 0755);
	tb_file(&t, "gone/.wh.old", "", 0644);
	tb_dir(&t, "opq", 0700);
	tb_file(&t, "opq/.wh..wh..opq", "", 0644);
	tb_file(&t, "opq/new", "n\n", 0644);
	tb_file(&t, ".wh..wh.plnk", "", 0644); /* aufs metadata: ignored */
	tb_dir(&t, "sticky", 01777);
	size_t n = tb_end(&t);
	lj_make(&l, t.mem, n, GZ);
	free(t.mem);
	int rc = unpack1(&l, NULL, &e);
	T_OK("basic: unpack ok", rc == 0);
	if (rc)
		printf("# %s\n", e.msg);
	struct stat a, b;
	T_OK("basic: file", has_file(&l, "etc/hostname", "layer\n"));
	T_OK("basic: absolute name lands inside", has_file(&l, "abs/file", "absolute name\n"));
	T_OK("basic: symlink kept verbatim", stat_in(&l, "etc/link", &a) && S_ISLNK(a.st_mode));
	T_OK("basic: hardlink same inode",
	     stat_in(&l, "etc/hard", &a) && stat_in(&l, "etc/hostname", &b) && a.st_ino == b.st_ino);
	T_OK("basic: fifo", stat_in(&l, "etc/fifo", &a) && S_ISFIFO(a.st_mode) && (a.st_mode & 07777) == 0620);
	T_OK("basic: setuid kept after chown",
	     stat_in(&l, "bin/suid", &a) && (a.st_mode & 07777) == 04755 && a.st_uid == 1000 && a.st_gid == 100);
	T_OK("basic: mode 0000", stat_in(&l, "bin/none", &a) && (a.st_mode & 07777) == 0);
	T_OK("basic: devices skipped", !stat_in(&l, "dev/null", &a) && !stat_in(&l, "dev/sda", &a));
	T_OK("basic: 0:0 char dev entry kept as whiteout", is_whiteout(&l, "gone/wh-dev"));
	T_OK("basic: whiteout is 0:0 char dev", is_whiteout(&l, "gone/old"));
	T_OK("basic: no .wh. file left", !stat_in(&l, "gone/.wh.old", &a) && !stat_in(&l, "opq/.wh..wh..opq", &a));
	T_OK("basic: opaque xattr", is_opaque(&l, "opq") && !is_opaque(&l, "gone"));
	T_OK("basic: aufs metadata ignored", !stat_in(&l, ".wh..wh.plnk", &a) && !stat_in(&l, "plnk", &a));
	T_OK("basic: sticky dir", stat_in(&l, "sticky", &a) && (a.st_mode & 07777) == 01777);
	T_OK("basic: dir mtime restored after children", stat_in(&l, "etc", &a) && a.st_mtime == MTIME);
	T_OK("basic: file mtime", stat_in(&l, "etc/hostname", &a) && a.st_mtime == MTIME);
	T_OK("basic: implicit parent 0755", stat_in(&l, "abs", &a) && (a.st_mode & 07777) == 0755);
	char *json = xasprintf("layers/%s.json", l.job.layer_id);
	char *j = read_file_at(st.rootfd, json, 4096, NULL, &e);
	T_OK("basic: layer json", j && strstr(j, l.diff) && strstr(j, "\"files\":"));
	free(j);
	free(json);
	T_OK("basic: tmp empty", count_dir("tmp") == 0);
	/* Present: a second call does nothing. */
	T_OK("basic: present layer skipped", unpack1(&l, NULL, &e) == 0);
}

/* Without openat2 (ENOSYS: kernels before 5.6, valgrind 3.19) directory times are still restored, through the
   O_NOFOLLOW walk, and never through a symlink. In a child with a seccomp filter that makes openat2 fail so. */
static bool no_openat2_child(void)
{
	if (no_openat2() < 0)
		return false;
	if (syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0) >= 0 || errno != ENOSYS)
		return false;
	struct tb t;
	struct lj l;
	struct qerr e;
	struct stat a;
	tb_begin(&t);
	tb_dir(&t, "nowalk/", 0755);
	tb_dir(&t, "nowalk/deep/", 0700);
	tb_dir(&t, "nowalk/deep/er/", 0755);
	tb_file(&t, "nowalk/deep/er/f", "no openat2\n", 0644);
	tb_sym(&t, "nowalk/link", "deep");
	size_t n = tb_end(&t);
	lj_make(&l, t.mem, n, GZ);
	free(t.mem);
	if (unpack1(&l, NULL, &e) < 0) {
		fprintf(stderr, "no openat2: %s\n", e.msg);
		return false;
	}
	return has_file(&l, "nowalk/deep/er/f", "no openat2\n") && stat_in(&l, "nowalk/deep/er", &a) &&
	       a.st_mtime == MTIME && stat_in(&l, "nowalk/deep", &a) && a.st_mtime == MTIME &&
	       (a.st_mode & 07777) == 0700 && stat_in(&l, "nowalk", &a) && a.st_mtime == MTIME &&
	       stat_in(&l, "nowalk/link", &a) && S_ISLNK(a.st_mode);
}

static void test_no_openat2(void)
{
	int status = -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(no_openat2_child() ? 0 : 1);
	T_OK("no openat2 (ENOSYS): directory times restored through the O_NOFOLLOW walk",
	     pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_codecs(void)
{
	static const char *const codecs[] = {GZ, ZS, TAR};
	for (int i = 0; i < 3; i++) {
		struct tb t;
		struct lj l;
		struct qerr e;
		tb_begin(&t);
		char big[300000];
		for (size_t k = 0; k < sizeof big; k++)
			big[k] = (char)('a' + (k * 7919 + k / 13) % 26);
		big[sizeof big - 1] = 0;
		tb_file(&t, "big", big, 0644);
		tb_file(&t, "codec", codecs[i], 0644);
		size_t n = tb_end(&t);
		lj_make(&l, t.mem, n, codecs[i]);
		free(t.mem);
		char name[64];
		snprintf(name, sizeof name, "codec %s", strrchr(codecs[i], '.') + 1);
		T_OK(name, unpack1(&l, NULL, &e) == 0 && has_file(&l, "big", big) && has_file(&l, "codec", codecs[i]));
	}
}

/* Two gzip members, and data after the tar's end marker: all of it is part of the diffID. */
static void test_multimember_trailing(void)
{
	struct tb t;
	struct lj l;
	struct qerr e;
	tb_begin(&t);
	tb_file(&t, "a", "first\n", 0644);
	size_t n = tb_end(&t);
	char *tar = malloc(n + 100);
	memcpy(tar, t.mem, n);
	memcpy(tar + n, "trailing bytes after the end-of-archive marker", 47);
	size_t tn = n + 47;
	size_t h = tn / 2, z1, z2;
	char *g1 = gzip_mem(tar, h, &z1), *g2 = gzip_mem(tar + h, tn - h, &z2);
	char *blob = malloc(z1 + z2);
	memcpy(blob, g1, z1);
	memcpy(blob + z1, g2, z2);
	sha256_hex(tar, tn, l.diff);
	store_blob(blob, z1 + z2, l.blob);
	l.job = (struct ovl_layer_job){l.blob, GZ, l.diff, store_digest_hex(l.diff)};
	T_OK("gzip multi-member + trailing data hashed", unpack1(&l, NULL, &e) == 0 && has_file(&l, "a", "first\n"));
	/* The same blob declared with the diffID of the tar without the trailer: mismatch. */
	struct lj m = l;
	sha256_hex(tar, n, m.diff);
	m.job = (struct ovl_layer_job){m.blob, GZ, m.diff, store_digest_hex(m.diff)};
	T_OK("diffID must cover trailing data",
	     unpack1(&m, NULL, &e) < 0 && strstr(e.msg, "diffID mismatch") && layer_absent(&m));
	free(g1);
	free(g2);
	free(blob);
	free(tar);
	free(t.mem);
}

/* Same-layer conversions: a dir replacing a whiteout is opaque; a whiteout of a dir of this layer makes it opaque;
   a symlink replaced by a file; a dir replaced by a file. */
static void test_conversions(void)
{
	struct tb t;
	struct lj l;
	struct qerr e;
	tb_begin(&t);
	tb_file(&t, ".wh.redir", "", 0644);
	tb_dir(&t, "redir", 0755);
	tb_file(&t, "redir/x", "x\n", 0644);
	tb_dir(&t, "keep", 0755);
	tb_file(&t, "keep/y", "y\n", 0644);
	tb_file(&t, ".wh.keep", "", 0644);
	tb_sym(&t, "s", "/tmp");
	tb_file(&t, "s", "now a file\n", 0644);
	tb_dir(&t, "d", 0755);
	tb_file(&t, "d/inner", "i\n", 0644);
	tb_file(&t, "d", "file replaces dir\n", 0644);
	tb_file(&t, ".wh.under", "", 0644);
	tb_file(&t, "under/z", "z\n", 0644); /* parent over a whiteout of this layer */
	size_t n = tb_end(&t);
	lj_make(&l, t.mem, n, TAR);
	free(t.mem);
	int rc = unpack1(&l, NULL, &e);
	T_OK("conv: unpack ok", rc == 0);
	if (rc)
		printf("# %s\n", e.msg);
	T_OK("conv: dir over whiteout is opaque", is_opaque(&l, "redir") && has_file(&l, "redir/x", "x\n"));
	T_OK("conv: whiteout of own dir -> opaque, content kept",
	     is_opaque(&l, "keep") && has_file(&l, "keep/y", "y\n"));
	T_OK("conv: symlink replaced by file", has_file(&l, "s", "now a file\n"));
	T_OK("conv: dir replaced by file", has_file(&l, "d", "file replaces dir\n"));
	T_OK("conv: implicit parent over whiteout is opaque", is_opaque(&l, "under") && has_file(&l, "under/z", "z\n"));
}

static bool canary_ok(void)
{
	char *c = xasprintf("%s/canary/file", tmproot);
	char *got = read_file_at(AT_FDCWD, c, 4096, NULL, &(struct qerr){0});
	bool ok = got && !strcmp(got, "canary\n");
	free(got);
	free(c);
	char *d = xasprintf("%s/canary", tmproot);
	int n = 0;
	DIR *dir = opendir(d);
	for (struct dirent *x; dir && (x = readdir(dir));)
		n++;
	if (dir)
		closedir(dir);
	free(d);
	return ok && n == 3;
}

typedef void (*builder)(struct tb *t, const char *canary);

static void h_dotdot(struct tb *t, const char *c)
{
	(void)c;
	tb_file(t, "../escape", "x", 0644);
}
static void h_dotdot_mid(struct tb *t, const char *c)
{
	(void)c;
	tb_file(t, "a/../../escape", "x", 0644);
}
static void h_abs_symlink(struct tb *t, const char *c)
{
	tb_sym(t, "evil", c);
	tb_file(t, "evil/file", "pwned\n", 0644);
}
static void h_rel_symlink(struct tb *t, const char *c)
{
	(void)c;
	tb_dir(t, "a", 0755);
	tb_sym(t, "a/up", "../../../../../../../../../../..");
	tb_file(t, "a/up/tmp/x", "pwned\n", 0644);
}
static void h_dir_then_symlink(struct tb *t, const char *c)
{
	tb_dir(t, "d", 0755);
	tb_file(t, "d/ok", "ok\n", 0644);
	tb_sym(t, "d", c); /* poison a cached parent */
	tb_file(t, "d/file", "pwned\n", 0644);
}
static void h_hardlink_out(struct tb *t, const char *c)
{
	(void)c;
	tb_link(t, "h", "/etc/hostname");
}
static void h_hardlink_dotdot(struct tb *t, const char *c)
{
	(void)c;
	tb_link(t, "h", "../../../../etc/hostname");
}
static void h_hardlink_via_symlink(struct tb *t, const char *c)
{
	tb_sym(t, "s", c);
	tb_link(t, "h", "s/file");
}
static void h_whiteout_dotdot(struct tb *t, const char *c)
{
	(void)c;
	tb_file(t, "a/.wh..", "", 0644);
}
static void h_whiteout_escape(struct tb *t, const char *c)
{
	(void)c;
	tb_file(t, ".wh.../x", "", 0644);
	tb_file(t, "../.wh.x", "", 0644);
}
static void h_long_component(struct tb *t, const char *c)
{
	(void)c;
	char name[300];
	memset(name, 'n', 299);
	name[299] = 0;
	tb_file(t, name, "x", 0644);
}
static void h_long_path(struct tb *t, const char *c)
{
	(void)c;
	static char name[5000];
	for (int i = 0; i < 4998; i += 2)
		name[i] = 'p', name[i + 1] = '/';
	name[4998] = 'f';
	name[4999] = 0;
	tb_file(t, name, "x", 0644);
}
static void h_symlink_root(struct tb *t, const char *c)
{
	tb_sym(t, ".", c); /* umoci CVE-2021-29136 */
	tb_file(t, "file", "pwned\n", 0644);
}
static void h_file_under_file(struct tb *t, const char *c)
{
	(void)c;
	tb_file(t, "f", "file\n", 0644);
	tb_file(t, "f/x", "x\n", 0644);
}

static void hostile(const char *name, builder b, const char *expect)
{
	struct tb t;
	struct lj l;
	struct qerr e;
	char *canary = xasprintf("%s/canary", tmproot);
	tb_begin(&t);
	tb_dir(&t, "./", 0755);
	b(&t, canary);
	size_t n = tb_end(&t);
	lj_make(&l, t.mem, n, GZ);
	free(t.mem);
	int rc = unpack1(&l, NULL, &e);
	bool ok =
	    rc < 0 && (!expect || strstr(e.msg, expect)) && canary_ok() && layer_absent(&l) && count_dir("tmp") == 0;
	char tn[128];
	snprintf(tn, sizeof tn, "hostile: %s", name);
	T_OK(tn, ok);
	if (getenv("QIMG_TEST_VERBOSE"))
		printf("#   %s\n", e.msg);
	if (!ok)
		printf("# rc=%d msg=%s canary=%d absent=%d tmp=%d\n", rc, e.msg, canary_ok(), layer_absent(&l),
		       count_dir("tmp"));
	free(canary);
}

static void test_hostile(void)
{
	hostile("../ name", h_dotdot, "\"..\" in path");
	hostile("a/../../ name", h_dotdot_mid, "\"..\" in path");
	hostile("absolute symlink then a file under it", h_abs_symlink, "path goes through symlink");
	hostile("relative symlink climbing out", h_rel_symlink, "path goes through symlink");
	hostile("dir then symlink of the same name (cache poisoning)", h_dir_then_symlink, "path goes through symlink");
	hostile("hardlink to /etc/hostname", h_hardlink_out, "is not in this layer");
	hostile("hardlink target with ..", h_hardlink_dotdot, "hardlink target");
	hostile("hardlink through a symlink", h_hardlink_via_symlink, "path goes through symlink");
	hostile("whiteout .wh..", h_whiteout_dotdot, "invalid whiteout name");
	hostile("whiteout with ../", h_whiteout_escape, "\"..\" in path");
	hostile("component over NAME_MAX", h_long_component, "NAME_MAX");
	hostile("name over PATH_MAX", h_long_path, "PATH_MAX");
	hostile("symlink named .", h_symlink_root, "names the layer root");
	hostile("file under a file", h_file_under_file, "not a directory");
}

/* A truncated tarball, a corrupt gzip stream, a gzip bomb, too many entries, a wrong diffID. */
static void test_broken(void)
{
	struct tb t;
	struct lj l;
	struct qerr e;
	char *zero = calloc(1, 8 << 20);
	tb_begin(&t);
	tb_entry(&t, AE_IFREG, "zeros", zero, 8 << 20, 0644, 0, 0, NULL);
	for (int i = 0; i < 50; i++) {
		char p[32];
		snprintf(p, sizeof p, "f%d", i);
		tb_file(&t, p, "x", 0644);
	}
	size_t n = tb_end(&t);

	struct lj tr;
	sha256_hex(t.mem, n, tr.diff);
	store_blob(t.mem, n / 2, tr.blob);
	tr.job = (struct ovl_layer_job){tr.blob, TAR, tr.diff, store_digest_hex(tr.diff)};
	T_OK("broken: truncated tar", unpack1(&tr, NULL, &e) < 0 && layer_absent(&tr) && count_dir("tmp") == 0);

	size_t zn;
	char *z = gzip_mem(t.mem, n, &zn);
	struct lj cut;
	sha256_hex(t.mem, n, cut.diff);
	store_blob(z, zn - 20, cut.blob);
	cut.job = (struct ovl_layer_job){cut.blob, GZ, cut.diff, store_digest_hex(cut.diff)};
	T_OK("broken: truncated gzip",
	     unpack1(&cut, NULL, &e) < 0 && strstr(e.msg, "truncated") && layer_absent(&cut) && count_dir("tmp") == 0);
	z[zn / 2] ^= 0x55;
	z[zn / 2 + 1] ^= 0x55;
	struct lj cor;
	sha256_hex(t.mem, n, cor.diff);
	store_blob(z, zn, cor.blob);
	cor.job = (struct ovl_layer_job){cor.blob, GZ, cor.diff, store_digest_hex(cor.diff)};
	T_OK("broken: corrupt gzip", unpack1(&cor, NULL, &e) < 0 && layer_absent(&cor) && count_dir("tmp") == 0);
	free(z);

	lj_make(&l, t.mem, n, GZ);
	struct ovl_unpack_limits ratio = {.max_ratio = 20};
	T_OK("broken: gzip bomb (ratio limit)",
	     unpack1(&l, &ratio, &e) < 0 && strstr(e.msg, "bomb") && layer_absent(&l) && count_dir("tmp") == 0);
	struct ovl_unpack_limits bytes = {.max_bytes = 4 << 20};
	T_OK("broken: size limit", unpack1(&l, &bytes, &e) < 0 && strstr(e.msg, "limit") && layer_absent(&l));
	struct ovl_unpack_limits entries = {.max_entries = 10};
	T_OK("broken: entry limit", unpack1(&l, &entries, &e) < 0 && strstr(e.msg, "entries") && layer_absent(&l));

	struct lj bad = l;
	bad.diff[10] = bad.diff[10] == 'a' ? 'b' : 'a';
	bad.job.diff_id = bad.diff;
	bad.job.layer_id = store_digest_hex(bad.diff);
	T_OK("broken: diffID mismatch", unpack1(&bad, NULL, &e) < 0 && strstr(e.msg, "diffID mismatch") &&
	                                    layer_absent(&bad) && count_dir("tmp") == 0);
	struct lj mt = l;
	mt.job.media_type = "application/x-evil";
	T_OK("broken: unknown media type", unpack1(&mt, NULL, &e) < 0 && strstr(e.msg, "media type"));
	T_OK("broken: default limits accept it", unpack1(&l, NULL, &e) == 0);
	free(t.mem);
	free(zero);

	/* A PAX header cut inside its records: libarchive 3.6 fails without a message (bsdtar prints "(null)"). */
	char longname[160];
	memset(longname, 'p', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	tb_begin(&t);
	tb_file(&t, longname, "x", 0644);
	n = tb_end(&t);
	struct lj pax;
	lj_make(&pax, t.mem, 700 < n ? 700 : n, TAR);
	T_OK("broken: PAX header cut in its records: the error says so, never (null)",
	     unpack1(&pax, NULL, &e) < 0 && strstr(e.msg, "read tar: damaged or truncated tar data") &&
	         !strstr(e.msg, "(null)") && layer_absent(&pax) && count_dir("tmp") == 0);
	if (!strstr(e.msg, "damaged or truncated"))
		fprintf(stderr, "# got: %s\n", e.msg);
	free(t.mem);
}

/* Several layers in parallel; one bad one fails the call and leaves neither its layer nor any tmp dir. */
static void test_parallel(void)
{
	struct lj l[5];
	struct ovl_layer_job jobs[6];
	struct qerr e = {0};
	for (int i = 0; i < 5; i++) {
		struct tb t;
		char p[32], c[32];
		tb_begin(&t);
		for (int k = 0; k < 200; k++) {
			snprintf(p, sizeof p, "l%d/f%d", i, k);
			snprintf(c, sizeof c, "%d-%d\n", i, k);
			tb_file(&t, p, c, 0644);
		}
		size_t n = tb_end(&t);
		lj_make(&l[i], t.mem, n, i % 2 ? ZS : GZ);
		free(t.mem);
		jobs[i] = l[i].job;
	}
	jobs[5] = jobs[0]; /* a duplicate is done once */
	T_OK("parallel: 5 layers, 2 workers", ovl_unpack_layers(&st, jobs, 6, 2, NULL, &e) == 0 &&
	                                          has_file(&l[4], "l4/f199", "4-199\n") &&
	                                          has_file(&l[1], "l1/f0", "1-0\n") && count_dir("tmp") == 0);
	if (e.msg[0])
		printf("# %s\n", e.msg);

	struct lj g[4];
	for (int i = 0; i < 4; i++) {
		struct tb t;
		char p[32];
		tb_begin(&t);
		for (int k = 0; k < 2000; k++) {
			snprintf(p, sizeof p, "g%d/f%d", i, k);
			tb_file(&t, p, "content\n", 0644);
		}
		if (i == 1)
			tb_file(&t, "../bad", "x", 0644);
		size_t n = tb_end(&t);
		lj_make(&g[i], t.mem, n, GZ);
		free(t.mem);
		jobs[i] = g[i].job;
	}
	int rc = ovl_unpack_layers(&st, jobs, 4, 2, NULL, &e);
	T_OK("parallel: failure reported", rc < 0 && strstr(e.msg, "\"..\" in path"));
	T_OK("parallel: failed layer absent, tmp clean", layer_absent(&g[1]) && count_dir("tmp") == 0);
}

/* Concurrent callers on the same layer: one unpacks, the other waits on the lock and finds it done. */
static void test_concurrent(void)
{
	struct tb t;
	struct lj l;
	tb_begin(&t);
	for (int k = 0; k < 3000; k++) {
		char p[32];
		snprintf(p, sizeof p, "c/f%d", k);
		tb_file(&t, p, "c\n", 0644);
	}
	size_t n = tb_end(&t);
	lj_make(&l, t.mem, n, GZ);
	free(t.mem);
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct qerr e = {0};
			_exit(ovl_unpack_layers(&st, &l.job, 1, 1, NULL, &e) == 0 ? 0 : 1);
		}
	}
	int ok = 0;
	for (int i = 0; i < 3; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	T_OK("concurrent: 3 callers, one layer", ok == 3 && has_file(&l, "c/f2999", "c\n") && count_dir("tmp") == 0);
}

/* ---- unpacking a blob while it downloads (ovl_unpacker) ---- */

/* A gzip layer of n files, not stored: its bytes, digest, diffID and job. */
struct slayer {
	char *gz;
	size_t zn;
	struct lj l;
};

static void slayer_make(struct slayer *s, int n, const char *tag)
{
	struct tb t;
	char p[64], c[64];
	tb_begin(&t);
	for (int k = 0; k < n; k++) {
		snprintf(p, sizeof p, "%s/f%d", tag, k);
		snprintf(c, sizeof c, "%s-%d\n", tag, k);
		tb_file(&t, p, c, 0644);
	}
	size_t tn = tb_end(&t);
	sha256_hex(t.mem, tn, s->l.diff);
	s->gz = gzip_mem(t.mem, tn, &s->zn);
	sha256_hex(s->gz, s->zn, s->l.blob);
	s->l.job = (struct ovl_layer_job){s->l.blob, GZ, s->l.diff, store_digest_hex(s->l.diff)};
	free(t.mem);
}

/* Poll the unpacker for about ms milliseconds. */
static int spin(struct ovl_unpacker *u, int ms, struct qerr *e)
{
	for (int i = 0; i < ms / 10; i++)
		if (ovl_unpacker_poll(u, 10, e) < 0)
			return -1;
	return 0;
}

static void test_streaming(void)
{
	struct qerr e = {0};
	struct slayer a, b, c;
	char *name = NULL;
	slayer_make(&a, 3000, "sa");
	slayer_make(&b, 50, "sb");
	slayer_make(&c, 50, "sc");

	/* The blob arrives in two halves; the layer appears only after the pull says the blob verified. */
	int fd = store_tmp_file(&st, "partial", &name, &e);
	struct ovl_unpacker *u = ovl_unpacker_new(&st, 2, NULL);
	size_t half = a.zn / 2;
	bool ok = fd >= 0 && write_all(fd, a.gz, half) == 0 &&
	          ovl_unpacker_add(u, &a.l.job, fd, (int64_t)a.zn, &e) == 0 && spin(u, 200, &e) == 0 &&
	          !store_layer_exists(&st, a.l.job.layer_id);
	T_OK("stream: nothing published from half a blob", ok);
	ok = write_all(fd, a.gz + half, a.zn - half) == 0 && spin(u, 300, &e) == 0 &&
	     !store_layer_exists(&st, a.l.job.layer_id);
	T_OK("stream: nothing published before the blob verifies", ok);
	ok = store_blob_commit(&st, fd, name, a.l.blob, &e) == 0;
	ovl_unpacker_blob_done(u, a.l.blob, true);
	ok = ok && ovl_unpacker_finish(u, &e) == 0;
	ovl_unpacker_free(u);
	close(fd);
	free(name);
	T_OK("stream: published once verified", ok && has_file(&a.l, "sa/f2999", "sa-2999\n") && count_dir("tmp") == 0);
	if (e.msg[0])
		printf("# %s\n", e.msg), e = (struct qerr){0};

	/* A blob that does not verify: no layer, no tmp dir. */
	fd = store_tmp_file(&st, "partial", &name, &e);
	u = ovl_unpacker_new(&st, 2, NULL);
	ok = fd >= 0 && write_all(fd, b.gz, b.zn) == 0 && ovl_unpacker_add(u, &b.l.job, fd, (int64_t)b.zn, &e) == 0 &&
	     spin(u, 200, &e) == 0;
	ovl_unpacker_blob_done(u, b.l.blob, false);
	ok = ok && ovl_unpacker_finish(u, &e) < 0 && strstr(e.msg, "not verified");
	ovl_unpacker_free(u);
	char *rel = xasprintf("tmp/%s", name);
	unlinkat(st.rootfd, rel, 0);
	T_OK("stream: an unverified blob publishes nothing", ok && layer_absent(&b.l) && count_dir("tmp") == 0);
	free(rel);
	free(name);
	close(fd);
	e = (struct qerr){0};

	/* A wrong prefix (a resumed download gone bad) fails the worker; the download starts over, verifies, and the
	   layer is unpacked from the stored blob. */
	fd = store_tmp_file(&st, "partial", &name, &e);
	u = ovl_unpacker_new(&st, 2, NULL);
	char junk[4096];
	memset(junk, 'x', sizeof junk);
	memcpy(junk, c.gz, 16); /* a gzip header, then garbage */
	ok = fd >= 0 && write_all(fd, junk, sizeof junk) == 0 &&
	     ovl_unpacker_add(u, &c.l.job, fd, (int64_t)c.zn, &e) == 0 && spin(u, 200, &e) == 0;
	T_OK("stream: a bad prefix is not fatal yet", ok);
	ok = ftruncate(fd, 0) == 0;
	ovl_unpacker_blob_restart(u, c.l.blob);
	ok = ok && pwrite(fd, c.gz, c.zn, 0) == (ssize_t)c.zn && store_blob_commit(&st, fd, name, c.l.blob, &e) == 0;
	ovl_unpacker_blob_done(u, c.l.blob, true);
	ok = ok && ovl_unpacker_finish(u, &e) == 0;
	ovl_unpacker_free(u);
	T_OK("stream: restarted blob unpacks", ok && has_file(&c.l, "sc/f49", "sc-49\n") && count_dir("tmp") == 0);
	if (e.msg[0])
		printf("# %s\n", e.msg);
	close(fd);
	free(name);

	/* The worker fails (a wrong diffID) and exits before the pull reaps it; telling it the blob verified must
	   not kill the pull with SIGPIPE, and the failure stands after the retry. */
	struct slayer d;
	slayer_make(&d, 20, "sd");
	d.l.diff[DIGEST_LEN - 1] = d.l.diff[DIGEST_LEN - 1] == '0' ? '1' : '0';
	d.l.job.layer_id = store_digest_hex(d.l.diff);
	e = (struct qerr){0};
	fd = store_tmp_file(&st, "partial", &name, &e);
	u = ovl_unpacker_new(&st, 2, NULL);
	ok = fd >= 0 && write_all(fd, d.gz, d.zn) == 0 && ovl_unpacker_add(u, &d.l.job, fd, (int64_t)d.zn, &e) == 0;
	usleep(500000);
	ok = ok && store_blob_commit(&st, fd, name, d.l.blob, &e) == 0;
	ovl_unpacker_blob_done(u, d.l.blob, true);
	ok = ok && ovl_unpacker_finish(u, &e) < 0 && strstr(e.msg, "diffID mismatch");
	ovl_unpacker_free(u);
	T_OK("stream: a worker gone before its blob verified", ok && layer_absent(&d.l) && count_dir("tmp") == 0);
	close(fd);
	free(name);
	free(a.gz);
	free(b.gz);
	free(c.gz);
	free(d.gz);
}

int main(void)
{
	char tmpl[] = "/tmp/qimg-unpack-XXXXXX";
	tmproot = mkdtemp(tmpl);
	struct qerr e = {0};
	char *root = xasprintf("%s/store", tmproot);
	char *canary = xasprintf("%s/canary", tmproot);
	mkdir(canary, 0755);
	char *cf = xasprintf("%s/file", canary);
	write_file_atomic_at(AT_FDCWD, cf, "canary\n", 7, 0644, false, &e);
	if (store_open(&st, root, &e) < 0) {
		printf("FAIL store_open: %s\n", e.msg);
		return 1;
	}
	test_basic();
	test_no_openat2();
	test_codecs();
	test_multimember_trailing();
	test_conversions();
	test_hostile();
	test_broken();
	test_parallel();
	test_concurrent();
	test_streaming();
	store_close(&st);
	rm_rf_at(AT_FDCWD, tmproot, &e);
	free(root);
	free(canary);
	free(cf);
	T_DONE();
}
