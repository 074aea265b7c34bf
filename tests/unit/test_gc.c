/* Unit tests: gc marks from refs, kept runs and live leases; sweeps the rest; --dry-run, --older-than, --max-size;
   a mark that cannot read a spec, ref, kept record or lease (or runs out of descriptors) stops gc unharmed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../store/gc.h"
#include "t.h"

static char *hexof(char c)
{
	char *h = xmalloc(65);
	memset(h, c, 64);
	h[64] = '\0';
	return h;
}

static void put_file(struct store *st, const char *rel, size_t size)
{
	int fd = openat(st->rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *data = xcalloc(1, size + 1);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	free(data);
}

/* An image with manifest hex m, config hex c, one layer blob hex b and layer id l (layer dir holds `size` bytes). */
static void make_image(struct store *st, char m, char c, char b, char l, size_t size)
{
	autofree char *mh = hexof(m), *ch = hexof(c), *bh = hexof(b), *lh = hexof(l);
	autofree char *md = xasprintf("sha256:%s", mh), *cd = xasprintf("sha256:%s", ch), *bd = xasprintf("sha256:%s", bh);
	const char *hx[3] = {mh, ch, bh};
	for (int i = 0; i < 3; i++) {
		autofree char *rel = xasprintf("blobs/sha256/%s", hx[i]);
		put_file(st, rel, 100);
	}
	autofree char *ldir = xasprintf("layers/%s", lh), *lfile = xasprintf("layers/%s/data", lh),
		      *ljson = xasprintf("layers/%s.json", lh);
	mkdirat(st->rootfd, ldir, 0755);
	put_file(st, lfile, size);
	put_file(st, ljson, 10);
	struct image_spec s = {0};
	s.manifest_digest = md;
	s.config_digest = cd;
	strv_push(&s.layers, lh);
	strv_push(&s.blobs, bd);
	struct qerr err;
	if (store_spec_write(st, &s, &err) < 0)
		abort();
	strv_free(&s.layers);
	strv_free(&s.blobs);
}

static bool exists(struct store *st, const char *fmt, char c)
{
	autofree char *h = hexof(c);
	autofree char *rel = xasprintf(fmt, h);
	return faccessat(st->rootfd, rel, F_OK, AT_EACCESS) == 0;
}

static void age(struct store *st, const char *fmt, char c, time_t secs)
{
	autofree char *h = hexof(c);
	autofree char *rel = xasprintf(fmt, h);
	struct timespec ts[2] = {{time(NULL) - secs, 0}, {time(NULL) - secs, 0}};
	utimensat(st->rootfd, rel, ts, AT_SYMLINK_NOFOLLOW);
}

/* Entries in rel (layers: dirs only), for "nothing was removed". */
static size_t count_in(struct store *st, const char *rel)
{
	size_t n = 0;
	int fd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && !strstr(e->d_name, ".json"))
			n++;
	if (d)
		closedir(d);
	return n;
}

static char *census(struct store *st)
{
	return xasprintf("specs %zu layers %zu blobs %zu refs %zu", count_in(st, "specs"), count_in(st, "layers"),
	                 count_in(st, "blobs/sha256"), count_in(st, "images"));
}

static void put_text(struct store *st, const char *rel, const char *text)
{
	int fd = openat(st->rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

/* Replace rel by a directory: unreadable as a file even for root (EISDIR). */
static void make_unreadable(struct store *st, const char *rel)
{
	if (unlinkat(st->rootfd, rel, 0) < 0 || mkdirat(st->rootfd, rel, 0700) < 0)
		abort();
}

static void undo_unreadable(struct store *st, const char *rel)
{
	if (unlinkat(st->rootfd, rel, AT_REMOVEDIR) < 0)
		abort();
}

/* gc must fail naming needle, say nothing was removed, and remove nothing. */
static void expect_stop(const char *name, struct store *st, const struct gc_opts *o, const char *needle)
{
	struct gc_report rep;
	struct qerr err = {0};
	autofree char *before = census(st);
	int rc = store_gc(st, o, &rep, &err);
	gc_report_free(&rep);
	autofree char *after = census(st);
	autofree char *n1 = xasprintf("%s: gc stops", name), *n2 = xasprintf("%s: the error names %.40s", name, needle),
		      *n3 = xasprintf("%s: nothing removed", name);
	T_OK(n1, rc < 0);
	T_OK(n2, strstr(err.msg, needle) != NULL && strstr(err.msg, "nothing was removed") != NULL &&
			 !strchr(err.msg, '\n'));
	if (!strstr(err.msg, needle))
		printf("#   message: %s\n", err.msg);
	T_STREQ(n3, before, after);
}

static bool gc_ok(struct store *st)
{
	struct gc_opts plain = {0};
	struct gc_report rep;
	struct qerr err = {0};
	int rc = store_gc(st, &plain, &rep, &err);
	gc_report_free(&rep);
	if (rc < 0)
		printf("#   gc: %s\n", err.msg);
	return rc == 0;
}

/* A fresh store in a new directory made from tmpl (the test aborts when it cannot have one). */
static void store_tmp_new(char *tmpl, struct store *st)
{
	struct qerr err = {0};
	if (!mkdtemp(tmpl) || store_open(st, tmpl, &err) < 0)
		abort();
}

/* Each planted failure in the mark stops gc with nothing removed; repaired, gc goes on and keeps the image. */
static void test_mark_errors(void)
{
	char tmpl[] = "/tmp/qimg-gcmark-XXXXXX";
	struct store st;
	struct qerr err = {0};
	store_tmp_new(tmpl, &st);
	struct gc_opts plain = {0};
	autofree char *ma = hexof('a'), *me = hexof('e'), *m1 = hexof('1');
	autofree char *mad = xasprintf("sha256:%s", ma), *med = xasprintf("sha256:%s", me);
	autofree char *spec_a = xasprintf("specs/%s", ma), *spec_e = xasprintf("specs/%s", me);
	const char *ref = "images/example.org%2Fkeep/v1";
	make_image(&st, 'a', 'b', 'c', 'd', 1000); /* referenced */
	make_image(&st, 'e', 'f', '0', '9', 1000); /* a kept container's */
	store_ref_set(&st, "example.org/keep", "v1", mad, &err);
	mkdirat(st.rootfd, "runs/box", 0700);
	mkdirat(st.rootfd, "runs/ghost", 0700); /* a container being made or removed: no record, not an error */
	autofree char *line = xasprintf("%s\n", med);
	put_text(&st, "runs/box/image", line);
	autofree char *good_spec = read_file_at(st.rootfd, spec_a, 1 << 20, NULL, &err);

	/* Garbage, so that a gc that went on would have removed something. */
	make_image(&st, '1', '2', '3', '4', 1000);
	put_text(&st, spec_a, "not a spec\n");
	expect_stop("spec corrupt", &st, &plain, spec_a);
	autofree char *head = xstrndup(good_spec, 30);
	put_text(&st, spec_a, head);
	expect_stop("spec truncated", &st, &plain, spec_a);
	make_unreadable(&st, spec_a);
	expect_stop("spec unreadable", &st, &plain, spec_a);
	undo_unreadable(&st, spec_a);
	expect_stop("spec missing for its ref", &st, &plain, spec_a);
	autofree char *bad_layer = xasprintf("qimg-spec 1\nmanifest %s\nconfig %s\nlayer ../../etc\nend\n", mad, mad);
	put_text(&st, spec_a, bad_layer);
	expect_stop("spec with a layer id that is no id", &st, &plain, "layer id");
	put_text(&st, spec_a, good_spec);

	make_image(&st, '1', '2', '3', '4', 1000);
	put_text(&st, ref, "nonsense\n");
	expect_stop("ref corrupt", &st, &plain, ref);
	put_text(&st, ref, "sha256:aaaa\n");
	expect_stop("ref truncated", &st, &plain, ref);
	make_unreadable(&st, ref);
	expect_stop("ref unreadable", &st, &plain, ref);
	undo_unreadable(&st, ref);
	put_text(&st, ref, line); /* now names e: a, unreferenced, would go */
	put_text(&st, "images/stray", "x");
	expect_stop("a file among the repository directories", &st, &plain, "images/stray");
	unlinkat(st.rootfd, "images/stray", 0);
	autofree char *aline = xasprintf("%s\n", mad);
	put_text(&st, ref, aline);

	/* A repository name too long for a directory name: hashed dir, the name in .name. */
	struct buf longname = {0};
	buf_printf(&longname, "example.org/");
	for (int i = 0; i < 40; i++)
		buf_printf(&longname, "segment%02d/", i);
	buf_printf(&longname, "end");
	store_ref_set(&st, longname.p, "v1", mad, &err);
	autofree char *namefile = NULL;
	DIR *images = fdopendir(openat(st.rootfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	struct dirent *e;
	while (images && (e = readdir(images)))
		if (!strncmp(e->d_name, "%h-", 3))
			namefile = xasprintf("images/%s/.name", e->d_name);
	if (images)
		closedir(images);
	T_OK("hashed repository directory made", namefile != NULL);
	autofree char *saved_name = namefile ? read_file_at(st.rootfd, namefile, 4096, NULL, &err) : NULL;
	if (namefile) {
		unlinkat(st.rootfd, namefile, 0);
		expect_stop("hashed repository without its name file", &st, &plain, namefile);
		put_text(&st, namefile, saved_name);
	}
	store_ref_remove(&st, longname.p, "v1", &err);
	buf_free(&longname);

	make_image(&st, '1', '2', '3', '4', 1000);
	put_text(&st, "runs/box/image", "junk\n");
	expect_stop("kept record corrupt", &st, &plain, "runs/box/image");
	put_text(&st, "runs/box/image", "sha256:eee\n");
	expect_stop("kept record truncated", &st, &plain, "runs/box/image");
	make_unreadable(&st, "runs/box/image");
	expect_stop("kept record unreadable", &st, &plain, "runs/box/image");
	undo_unreadable(&st, "runs/box/image");
	put_text(&st, "runs/box/image", line);
	put_text(&st, spec_e, "qimg-spec 1\n");
	expect_stop("kept container's spec truncated", &st, &plain, spec_e);
	make_image(&st, 'e', 'f', '0', '9', 1000);

	/* The lease of an unreferenced image that gc cannot take or test. */
	autofree char *lock1 = xasprintf("locks/image-%s.lock", m1);
	unlinkat(st.rootfd, lock1, 0);
	mkdirat(st.rootfd, lock1, 0700);
	expect_stop("lease that cannot be opened", &st, &plain, lock1);
	unlinkat(st.rootfd, lock1, AT_REMOVEDIR);

	/* --all --older-than decides which refs to drop first; a mark error after that drops none. */
	age(&st, "specs/%s", 'a', 7200);
	put_text(&st, "runs/box/image", "junk\n");
	struct gc_opts all = {.older_than = 3600, .all = true};
	expect_stop("--all: a mark error drops no ref", &st, &all, "runs/box/image");
	T_OK("--all: the ref is still there", faccessat(st.rootfd, ref, F_OK, 0) == 0);
	put_text(&st, "runs/box/image", line);

	T_OK("repaired: gc succeeds", gc_ok(&st));
	T_OK("repaired: the referenced image is whole", exists(&st, "specs/%s", 'a') && exists(&st, "layers/%s", 'd') &&
							      exists(&st, "blobs/sha256/%s", 'c'));
	T_OK("repaired: the kept image is whole", exists(&st, "specs/%s", 'e') && exists(&st, "layers/%s", '9'));
	T_OK("repaired: the garbage went", !exists(&st, "specs/%s", '1') && !exists(&st, "layers/%s", '4'));
	rm_rf_at(AT_FDCWD, tmpl, &err);
	store_close(&st);
}

/* Out of descriptors at every point gc can be: it succeeds, or fails having removed nothing. */
static void test_nofile(void)
{
	char tmpl[] = "/tmp/qimg-gcfd-XXXXXX";
	struct store st;
	struct qerr err = {0};
	store_tmp_new(tmpl, &st);
	autofree char *ma = hexof('a');
	autofree char *mad = xasprintf("sha256:%s", ma);
	make_image(&st, 'a', 'b', 'c', 'd', 1000);
	make_image(&st, '1', '2', '3', '4', 1000);
	store_ref_set(&st, "example.org/keep", "v1", mad, &err);
	mkdirat(st.rootfd, "runs/box", 0700);
	struct rlimit saved;
	getrlimit(RLIMIT_NOFILE, &saved);
	int lowest = dup(0);
	close(lowest);
	bool done = false, mid_mark = false, clean = true;
	for (int k = 0; k <= 16 && !done; k++) {
		autofree char *before = census(&st);
		struct rlimit lim = {(rlim_t)lowest + (rlim_t)k, saved.rlim_max};
		struct gc_opts plain = {0};
		struct gc_report rep;
		err = (struct qerr){0};
		setrlimit(RLIMIT_NOFILE, &lim);
		int rc = store_gc(&st, &plain, &rep, &err);
		setrlimit(RLIMIT_NOFILE, &saved);
		gc_report_free(&rep);
		autofree char *after = census(&st);
		done = rc == 0;
		if (rc < 0 && err.code == EMFILE && strstr(err.msg, "nothing was removed") && strstr(err.msg, "gc: images"))
			mid_mark = true;
		if (rc < 0 && strcmp(before, after) != 0) {
			printf("#   %d descriptors: %s\n", lowest + k, err.msg);
			clean = false;
		}
	}
	T_OK("nofile: a failing gc removed nothing", clean);
	T_OK("nofile: one limit failed in the mark, with the error naming what it opened", mid_mark);
	T_OK("nofile: with enough descriptors gc succeeds", done);
	T_OK("nofile: the referenced image is whole", exists(&st, "specs/%s", 'a') && exists(&st, "layers/%s", 'd'));
	T_OK("nofile: the garbage went", !exists(&st, "specs/%s", '1'));
	rm_rf_at(AT_FDCWD, tmpl, &err);
	store_close(&st);
}

/* --max-size whose least recently used ref cannot be removed (immutable): an error, not the same victim forever. */
static void test_max_size_stuck(void)
{
	char tmpl[] = "/tmp/qimg-gcmax-XXXXXX";
	struct store st;
	struct qerr err = {0};
	store_tmp_new(tmpl, &st);
	autofree char *ma = hexof('a'), *m1 = hexof('1');
	autofree char *mad = xasprintf("sha256:%s", ma), *m1d = xasprintf("sha256:%s", m1);
	make_image(&st, 'a', 'b', 'c', 'd', 100000);
	make_image(&st, '1', '2', '3', '4', 100000);
	store_ref_set(&st, "example.org/new", "v1", mad, &err);
	store_ref_set(&st, "example.org/old", "v1", m1d, &err);
	age(&st, "specs/%s", '1', 86400);
	const char *ref = "images/example.org%2Fold/v1";
	int fd = openat(st.rootfd, ref, O_RDONLY | O_CLOEXEC);
	int flags = 0;
	bool immutable = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
			 (flags |= FS_IMMUTABLE_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
	if (!immutable) {
		printf("ok max-size stuck: skipped (no immutable files here: %s)\n", strerror(errno));
	} else {
		autofree char *before = census(&st);
		pid_t pid = fork();
		if (pid == 0) {
			alarm(20); /* the bug was an endless loop */
			struct gc_opts cap = {.max_size = 1000};
			struct gc_report rep;
			int rc = store_gc(&st, &cap, &rep, &err);
			bool named = strstr(err.msg, "example.org/old:v1") && strstr(err.msg, "--max-size");
			if (!named)
				printf("#   message: %s\n", err.msg);
			_exit(rc < 0 && named ? 0 : 1);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		T_OK("max-size stuck: gc ends (no endless loop)", !WIFSIGNALED(status));
		T_OK("max-size stuck: gc fails naming the ref", WIFEXITED(status) && WEXITSTATUS(status) == 0);
		autofree char *after = census(&st);
		T_STREQ("max-size stuck: nothing removed", before, after);
		flags &= ~FS_IMMUTABLE_FL;
		ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0)
		close(fd);
	rm_rf_at(AT_FDCWD, tmpl, &err);
	store_close(&st);
}

int main(void)
{
	char tmpl[] = "/tmp/qimg-gc-XXXXXX";
	if (!mkdtemp(tmpl))
		return 2;
	struct store st;
	struct qerr err = {0};
	if (store_open(&st, tmpl, &err) < 0)
		return 2;
	make_image(&st, 'a', 'b', 'c', 'd', 1000);  /* referenced */
	make_image(&st, '1', '2', '3', '4', 1000);  /* unreferenced */
	make_image(&st, '5', '6', '7', '8', 1000);  /* unreferenced but a live run holds its lease */
	make_image(&st, 'e', 'f', '0', '9', 1000);  /* kept container's image */
	autofree char *ma = hexof('a'), *me = hexof('e'), *m5 = hexof('5');
	autofree char *mad = xasprintf("sha256:%s", ma), *med = xasprintf("sha256:%s", me);
	store_ref_set(&st, "example.org/keep", "v1", mad, &err);
	mkdirat(st.rootfd, "runs/box", 0700);
	autofree char *line = xasprintf("%s\n", med);
	write_file_atomic_at(st.rootfd, "runs/box/image", line, strlen(line), 0644, false, &err);
	int lease = store_lock_object(&st, "image", m5, false, true, &err);
	/* Leftovers: one of a dead process, one of a live one (us). */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	autofree char *dead_tmp = xasprintf("tmp/unpack-%d-abcdef", (int)dead);
	autofree char *live_tmp = xasprintf("tmp/unpack-%d-abcdef", (int)getppid());
	mkdirat(st.rootfd, dead_tmp, 0755);
	mkdirat(st.rootfd, live_tmp, 0755);

	struct gc_opts dry = {.dry_run = true};
	struct gc_report rep;
	T_OK("dry run succeeds", store_gc(&st, &dry, &rep, &err) == 0);
	T_OK("dry run counts one image", rep.images == 1 && rep.layers == 1 && rep.blobs == 3 && rep.tmp == 1);
	T_OK("dry run reports bytes", rep.bytes > 1000);
	gc_report_free(&rep);
	T_OK("dry run removes nothing", exists(&st, "layers/%s", '4') && exists(&st, "specs/%s", '1') &&
						exists(&st, "blobs/sha256/%s", '3') && faccessat(st.rootfd, dead_tmp, F_OK, 0) == 0);

	struct gc_opts recent = {.older_than = 3600};
	T_OK("older-than keeps recent objects", store_gc(&st, &recent, &rep, &err) == 0 && rep.layers == 0 && rep.blobs == 0);
	gc_report_free(&rep);
	age(&st, "layers/%s.json", '4', 7200);
	age(&st, "specs/%s", '1', 7200);
	T_OK("older-than removes old objects", store_gc(&st, &recent, &rep, &err) == 0 && rep.layers == 1 && rep.images == 1);
	gc_report_free(&rep);
	T_OK("old layer gone", !exists(&st, "layers/%s", '4') && !exists(&st, "layers/%s.json", '4'));

	struct gc_opts plain = {0};
	T_OK("gc succeeds", store_gc(&st, &plain, &rep, &err) == 0);
	gc_report_free(&rep);
	T_OK("referenced image kept", exists(&st, "specs/%s", 'a') && exists(&st, "layers/%s", 'd') &&
					      exists(&st, "blobs/sha256/%s", 'c') && exists(&st, "blobs/sha256/%s", 'b'));
	T_OK("kept container's image kept", exists(&st, "specs/%s", 'e') && exists(&st, "layers/%s", '9'));
	T_OK("live run's image kept", exists(&st, "specs/%s", '5') && exists(&st, "layers/%s", '8') &&
					      exists(&st, "blobs/sha256/%s", '7'));
	T_OK("unreferenced blobs gone", !exists(&st, "blobs/sha256/%s", '3') && !exists(&st, "blobs/sha256/%s", '2'));
	T_OK("dead leftover gone, live one kept",
	     faccessat(st.rootfd, dead_tmp, F_OK, 0) != 0 && faccessat(st.rootfd, live_tmp, F_OK, 0) == 0);
	struct strv left = {0};
	int tfd = openat(st.rootfd, "tmp", O_RDONLY | O_DIRECTORY);
	DIR *d = fdopendir(tfd);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			strv_push(&left, e->d_name);
	closedir(d);
	T_OK("trash emptied", left.n == 1);
	strv_free(&left);

	close(lease);
	T_OK("lease released: image collected", store_gc(&st, &plain, &rep, &err) == 0 && rep.images == 1 &&
							 !exists(&st, "layers/%s", '8'));
	gc_report_free(&rep);

	/* --max-size evicts least recently used refs first. */
	make_image(&st, '1', '2', '3', '4', 200000);
	autofree char *m1 = hexof('1');
	autofree char *m1d = xasprintf("sha256:%s", m1);
	store_ref_set(&st, "example.org/old", "v1", m1d, &err);
	age(&st, "specs/%s", '1', 86400);
	int64_t before = store_usage(&st);
	struct gc_opts cap = {.max_size = before - 100000};
	T_OK("max-size gc", store_gc(&st, &cap, &rep, &err) == 0);
	gc_report_free(&rep);
	T_OK("LRU image evicted", !exists(&st, "layers/%s", '4') && !exists(&st, "specs/%s", '1'));
	T_OK("recent image kept under max-size", exists(&st, "layers/%s", 'd'));
	T_OK("store fits", store_usage(&st) <= cap.max_size);

	rm_rf_at(AT_FDCWD, tmpl, &err);
	store_close(&st);
	test_mark_errors();
	test_nofile();
	test_max_size_stuck();
	T_DONE();
}
