/* Unit tests of `export`: hand-made overlay-format layer dirs flattened into one tree (whiteouts, opaque dirs, type
   changes, hardlinks, modes, owners, --own), and the refusals (non-empty destination, missing layer). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../overlay/overlay.h"
#include "../../store/store.h"
#include "t.h"

static struct store st;
static char *tmproot;

static const char *ids[3] = {
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333333333333333333333333333",
};

static int L; /* fd of the layer dir being built */

static void mk_layer(int i)
{
	char *rel = xasprintf("layers/%s", ids[i]);
	mkdirat(st.rootfd, rel, 0755);
	if (L >= 0)
		close(L);
	L = openat(st.rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(rel);
}

static void dir(const char *p, mode_t m)
{
	mkdirat(L, p, m);
	fchmodat(L, p, m, 0);
}

static void file(const char *p, const char *content, mode_t m, uid_t u, gid_t g)
{
	int fd = openat(L, p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	write_all(fd, content, strlen(content));
	fchown(fd, u, g);
	fchmod(fd, m);
	close(fd);
}

static void whiteout(const char *p)
{
	mknodat(L, p, S_IFCHR, makedev(0, 0));
}

static void opaque(const char *p)
{
	int fd = openat(L, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fsetxattr(fd, "user.overlay.opaque", "y", 1, 0);
	close(fd);
}

#define SPARSE_SIZE ((off_t)1 << 30)
static const struct {
	off_t off;
	const char *data;
} sparse_data[] = {{0, "head"}, {SPARSE_SIZE / 2 + 3, "middle"}, {SPARSE_SIZE - 4, "tail"}};

/* Sparse files: 1 GiB with a few bytes at its start, middle and end; 100 MiB of hole only; data, then a hole. */
static void sparse_files(void)
{
	int fd = openat(L, "sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	for (size_t i = 0; i < sizeof sparse_data / sizeof sparse_data[0]; i++)
		(void)pwrite_all(fd, sparse_data[i].data, strlen(sparse_data[i].data), sparse_data[i].off);
	close(fd);
	fd = openat(L, "all-hole", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	(void)ftruncate(fd, (off_t)100 << 20);
	close(fd);
	fd = openat(L, "hole-tail", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	(void)pwrite_all(fd, "data", 4, 0);
	(void)ftruncate(fd, (off_t)64 << 20);
	close(fd);
}

static void build_layers(void)
{
	L = -1;
	mk_layer(0);
	dir("a", 0755);
	file("a/keep", "keep\n", 0644, 0, 0);
	file("a/gone", "gone\n", 0644, 0, 0);
	file("a/mod", "v1\n", 0644, 0, 0);
	dir("opq", 0755);
	file("opq/old", "old\n", 0644, 0, 0);
	file("f2d", "file\n", 0644, 0, 0);
	dir("d2l", 0755);
	file("d2l/inner", "inner\n", 0644, 0, 0);
	dir("wdir", 0755);
	file("wdir/old", "old\n", 0644, 0, 0);
	dir("hl", 0755);
	file("hl/orig", "hard\n", 0644, 0, 0);
	linkat(L, "hl/orig", L, "hl/link", 0);
	file("suid", "suid\n", 04755, 1000, 100);
	file("private", "p\n", 0600, 1000, 1000);
	symlinkat("/etc/passwd", L, "abs-link");
	mkfifoat(L, "fifo", 0620);
	fchmodat(L, "fifo", 0620, 0);
	dir("sticky", 01777);
	file("x", "x\n", 0644, 0, 0);
	fsetxattr(openat(L, "x", O_RDONLY | O_CLOEXEC), "user.qimg.test", "hello", 5, 0);
	sparse_files();

	mk_layer(1);
	dir("a", 0755);
	whiteout("a/gone");
	file("a/mod", "v2\n", 0644, 0, 0);
	dir("opq", 0755);
	opaque("opq");
	file("opq/new", "new\n", 0644, 0, 0);
	dir("f2d", 0755);
	file("f2d/inside", "inside\n", 0644, 0, 0);
	symlinkat("a", L, "d2l");
	whiteout("wdir");

	mk_layer(2);
	dir("wdir", 0700);
	file("wdir/fresh", "fresh\n", 0644, 0, 0);
	close(L);
}

static char *slurp(const char *dest, const char *p)
{
	char *abs = xasprintf("%s/%s", dest, p);
	char *s = read_file_at(AT_FDCWD, abs, 1 << 20, NULL, &(struct qerr){0});
	free(abs);
	return s;
}

static bool has(const char *dest, const char *p, const char *content)
{
	char *s = slurp(dest, p);
	bool ok = s && !strcmp(s, content);
	free(s);
	return ok;
}

static bool lst(const char *dest, const char *p, struct stat *sb)
{
	char *abs = xasprintf("%s/%s", dest, p);
	bool ok = lstat(abs, sb) == 0;
	free(abs);
	return ok;
}

static int entries(const char *dest, const char *p)
{
	char *abs = xasprintf("%s/%s", dest, p);
	DIR *d = opendir(abs);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	free(abs);
	return d ? n : -1;
}

/* dest/p has size bytes, takes under 1 MiB of disk, and (for "sparse") the written bytes where they were. */
static bool sparse_ok(const char *dest, const char *p, off_t size)
{
	char *path = xasprintf("%s/%s", dest, p);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	struct stat sb;
	bool ok = fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size == size && sb.st_blocks * 512 < (1 << 20);
	for (size_t i = 0; ok && !strcmp(p, "sparse") && i < sizeof sparse_data / sizeof sparse_data[0]; i++) {
		char got[16] = {0};
		size_t n = strlen(sparse_data[i].data);
		ok = pread(fd, got, n, sparse_data[i].off) == (ssize_t)n && !memcmp(got, sparse_data[i].data, n);
	}
	if (fd >= 0 && !ok)
		printf("# %s: size %lld, %lld bytes on disk\n", p, (long long)sb.st_size,
		       (long long)sb.st_blocks * 512);
	if (fd >= 0)
		close(fd);
	return ok;
}

static void check_tree(const char *dest, const char *tag, bool own)
{
	char n[128];
	struct stat a, b;
#define CHECK(name, cond)                                                                                              \
	do {                                                                                                           \
		snprintf(n, sizeof n, "%s: %s", tag, name);                                                            \
		T_OK(n, cond);                                                                                         \
	} while (0)
	CHECK("kept file", has(dest, "a/keep", "keep\n"));
	CHECK("whiteout deletes", !lst(dest, "a/gone", &a));
	CHECK("upper version wins", has(dest, "a/mod", "v2\n"));
	CHECK("opaque dir hides lower content", entries(dest, "opq") == 1 && has(dest, "opq/new", "new\n"));
	CHECK("file -> dir", has(dest, "f2d/inside", "inside\n"));
	CHECK("dir -> symlink", lst(dest, "d2l", &a) && S_ISLNK(a.st_mode));
	CHECK("whited-out dir re-created fresh", entries(dest, "wdir") == 1 && has(dest, "wdir/fresh", "fresh\n"));
	CHECK("hardlink preserved", lst(dest, "hl/orig", &a) && lst(dest, "hl/link", &b) && a.st_ino == b.st_ino);
	CHECK("setuid kept", lst(dest, "suid", &a) && (a.st_mode & 07777) == 04755);
	CHECK("owners", lst(dest, "suid", &a) && lst(dest, "private", &b) &&
	                    (own ? a.st_uid == getuid() && b.st_gid == getgid()
	                         : a.st_uid == 1000 && a.st_gid == 100 && b.st_uid == 1000));
	CHECK("symlink target verbatim", lst(dest, "abs-link", &a) && S_ISLNK(a.st_mode) && a.st_size == 11);
	CHECK("fifo", lst(dest, "fifo", &a) && S_ISFIFO(a.st_mode) && (a.st_mode & 07777) == 0620);
	CHECK("sticky dir", lst(dest, "sticky", &a) && (a.st_mode & 07777) == 01777);
	CHECK("no whiteout devices", !lst(dest, "wdir/old", &a) && lst(dest, "a", &a) && entries(dest, "a") == 2);
	char v[8];
	char *opq = xasprintf("%s/opq", dest), *x = xasprintf("%s/x", dest);
	CHECK("no overlay xattrs", lgetxattr(opq, "user.overlay.opaque", v, sizeof v) < 0);
	CHECK("user xattr copied", lgetxattr(x, "user.qimg.test", v, sizeof v) == 5 && !memcmp(v, "hello", 5));
	CHECK("sparse file: holes kept, data where it was", sparse_ok(dest, "sparse", SPARSE_SIZE));
	CHECK("a file that is all hole stays one", sparse_ok(dest, "all-hole", (off_t)100 << 20));
	CHECK("a trailing hole stays one", sparse_ok(dest, "hole-tail", (off_t)64 << 20));
	free(opq);
	free(x);
#undef CHECK
}

int main(void)
{
	char tmpl[] = "/tmp/qimg-export-XXXXXX";
	tmproot = mkdtemp(tmpl);
	struct qerr e = {0};
	char *root = xasprintf("%s/store", tmproot);
	if (store_open(&st, root, &e) < 0) {
		printf("FAIL store_open: %s\n", e.msg);
		return 1;
	}
	build_layers();
	struct image_spec spec = {0};
	for (int i = 0; i < 3; i++)
		strv_push(&spec.layers, ids[i]);

	char *dest = xasprintf("%s/out", tmproot);
	int rc = ovl_export_dir(&st, &spec, dest, false, &e);
	T_OK("export: ok", rc == 0);
	if (rc)
		printf("# %s\n", e.msg);
	check_tree(dest, "export", false);

	e = (struct qerr){0};
	T_OK("export: non-empty destination refused",
	     ovl_export_dir(&st, &spec, dest, false, &e) < 0 && strstr(e.msg, "not empty"));

	char *dest2 = xasprintf("%s/own", tmproot);
	mkdir(dest2, 0700); /* an existing empty dir is fine */
	e = (struct qerr){0};
	rc = ovl_export_dir(&st, &spec, dest2, true, &e);
	T_OK("export --own: ok", rc == 0);
	if (rc)
		printf("# %s\n", e.msg);
	check_tree(dest2, "export --own", true);

	struct image_spec bad = {0};
	strv_push(&bad.layers, "4444444444444444444444444444444444444444444444444444444444444444");
	char *dest3 = xasprintf("%s/missing", tmproot);
	e = (struct qerr){0};
	T_OK("export: missing layer refused",
	     ovl_export_dir(&st, &bad, dest3, false, &e) < 0 && strstr(e.msg, "missing") && access(dest3, F_OK) < 0);

	strv_free(&spec.layers);
	strv_free(&bad.layers);
	store_close(&st);
	rm_rf_at(AT_FDCWD, tmproot, &e);
	free(root);
	free(dest);
	free(dest2);
	free(dest3);
	T_DONE();
}
