/* Unit tests: gc marks from refs, kept runs and live leases; sweeps the rest; --dry-run, --older-than, --max-size. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
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
	T_DONE();
}
