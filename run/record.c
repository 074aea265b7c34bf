/* Live runs: live/<id>, a small line file flock'ed by the run's qimg process for the run's life (ps, kill, gc). */
#include "run_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIVE_DIR       "live"
#define RECORD_MAX     (64u << 10)
#define TMP_STALE_SECS 60 /* a half-made record (create, then lock) is only removed once this old */

static void record_line(struct buf *b, const char *key, const char *value)
{
	autofree char *esc = line_escape(value ? value : "");
	buf_printf(b, "%s %s\n", key, esc);
}

/* Parse a record; lines without their newline (an append in progress) are ignored. */
static int record_parse(char *text, const char *id, struct run_record *r)
{
	memset(r, 0, sizeof *r);
	memcpy(r->id, id, RUN_ID_LEN); /* id_valid() checked it */
	r->id[RUN_ID_LEN] = '\0';
	for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = '\0';
		line_unescape(v);
		if (!strcmp(line, "name"))
			r->name = xstrdup(v);
		else if (!strcmp(line, "image"))
			r->image = xstrdup(v);
		else if (!strcmp(line, "command"))
			r->command = xstrdup(v);
		else if (!strcmp(line, "pid"))
			r->pid = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "init"))
			r->init = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "created"))
			r->created = strtoll(v, NULL, 10);
	}
	if (!r->name)
		r->name = xstrdup("");
	if (!r->image)
		r->image = xstrdup("");
	if (!r->command)
		r->command = xstrdup("");
	return r->pid > 0 ? 0 : -1;
}

void run_record_free(struct run_record *r)
{
	free(r->name);
	free(r->image);
	free(r->command);
	memset(r, 0, sizeof *r);
}

void run_records_free(struct run_record *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_record_free(&v[i]);
	free(v);
}

static bool id_valid(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");
	return n == RUN_ID_LEN && s[n] == '\0';
}

/* The whole (small) file behind fd, NUL-terminated; NULL with errno set on a read error. */
static char *fd_read_all(int fd)
{
	struct buf b = {0};
	char chunk[4096];
	ssize_t k;
	while (b.len < RECORD_MAX && (k = pread(fd, chunk, sizeof chunk, (off_t)b.len)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			buf_free(&b);
			return NULL;
		}
		buf_append(&b, chunk, (size_t)k);
	}
	buf_append(&b, "", 1);
	return b.p;
}

/* One entry of live/: 1 live (*r filled), 0 stale or gone (removed), -1 error. */
static int record_check(int dirfd, const char *id, struct run_record *r, struct qerr *err)
{
	autoclose int fd = openat(dirfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : qerr_sys(err, "open %s/%s", LIVE_DIR, id);
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) { /* nobody holds it: the run's qimg is gone */
		if (unlinkat(dirfd, id, 0) < 0 && errno != ENOENT)
			return qerr_sys(err, "remove stale run record %s/%s", LIVE_DIR, id);
		return 0;
	}
	if (errno != EWOULDBLOCK)
		return qerr_sys(err, "lock %s/%s", LIVE_DIR, id);
	autofree char *text = fd_read_all(fd);
	if (!text)
		return qerr_sys(err, "read %s/%s", LIVE_DIR, id);
	return record_parse(text, id, r) == 0 ? 1 : 0;
}

/* Tmp files of a creation that died between its create and its lock. */
static void tmp_prune(int dirfd, const char *name, size_t *removed)
{
	struct stat sb;
	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || time(NULL) - sb.st_mtime < TMP_STALE_SECS)
		return;
	autoclose int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) == 0 && unlinkat(dirfd, name, 0) == 0 && removed)
		(*removed)++;
}

static int live_open(struct store *st, struct qerr *err)
{
	int fd = openat(st->rootfd, LIVE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(st->rootfd, LIVE_DIR, 0755) < 0 && errno != EEXIST)
			return qerr_sys(err, "store %s: mkdir %s", st->root, LIVE_DIR);
		fd = openat(st->rootfd, LIVE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return qerr_sys(err, "store %s: open %s", st->root, LIVE_DIR);
	return fd;
}

/* Every live record (stale ones removed on the way; *stale counts them when given). */
static int records_scan(int dirfd, struct run_record **out, size_t *n, size_t *stale, struct qerr *err)
{
	int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return qerr_sys(err, "dup");
	DIR *d = fdopendir(dup);
	if (!d) {
		close(dup);
		return qerr_sys(err, "opendir %s", LIVE_DIR);
	}
	rewinddir(d);
	*out = NULL;
	*n = 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				tmp_prune(dirfd, e->d_name, stale);
			continue;
		}
		if (!id_valid(e->d_name))
			continue;
		struct run_record r;
		int c = record_check(dirfd, e->d_name, &r, err);
		if (c < 0)
			rc = -1;
		else if (c == 0 && stale)
			(*stale)++;
		if (c != 1)
			continue;
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = r;
	}
	closedir(d);
	if (rc < 0) {
		run_records_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int cmp_created(const void *a, const void *b)
{
	const struct run_record *x = a, *y = b;
	return x->created < y->created ? 1 : x->created > y->created ? -1 : strcmp(x->id, y->id);
}

int run_records_list(struct store *st, struct run_record **out, size_t *n, size_t *stale, struct qerr *err)
{
	autoclose int dirfd = live_open(st, err);
	if (dirfd < 0 || records_scan(dirfd, out, n, stale, err) < 0)
		return -1;
	if (*n > 1)
		qsort(*out, *n, sizeof **out, cmp_created);
	return 0;
}

/* A live run named name: error (the caller holds the directory's lock, so no other run takes it meanwhile). */
static int name_check(int dirfd, const char *name, struct qerr *err)
{
	struct run_record *v;
	size_t n;
	if (records_scan(dirfd, &v, &n, NULL, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!strcmp(v[i].name, name))
			rc = qerr_set(err, "name %s is already in use by a running container (%.12s)", name, v[i].id);
	run_records_free(v, n);
	return rc;
}

static char *record_text(const char *id, const struct run_record_new *rn)
{
	struct buf b = {0};
	struct buf cmd = {0};
	buf_printf(&cmd, "%s", "");
	for (size_t i = 0; i < rn->ncmd; i++)
		buf_printf(&cmd, "%s%s", i ? " " : "", rn->cmd[i]);
	record_line(&b, "id", id);
	record_line(&b, "name", rn->name);
	record_line(&b, "image", rn->image);
	buf_printf(&b, "pid %ld\ncreated %lld\n", (long)getpid(), (long long)time(NULL));
	record_line(&b, "command", cmd.p);
	buf_free(&cmd);
	buf_append(&b, "", 1);
	return b.p;
}

/* Write the record under a dot name, lock it, then rename it into place: a visible record is always locked. */
static int record_publish(int dirfd, const char *id, const struct run_record_new *rn, struct qerr *err)
{
	char tmp[RUN_ID_LEN + 8];
	snprintf(tmp, sizeof tmp, ".%s.tmp", id);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return qerr_sys(err, "create run record %s/%s", LIVE_DIR, tmp);
	autofree char *text = record_text(id, rn);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || write_all(fd, text, strlen(text)) < 0 ||
	    renameat(dirfd, tmp, dirfd, id) < 0) {
		qerr_sys(err, "write run record %s/%s", LIVE_DIR, id);
		(void)unlinkat(dirfd, tmp, 0);
		close(fd);
		return -1;
	}
	return fd;
}

int run_record_create(struct store *st, const struct run_record_new *rn, char id[RUN_ID_LEN + 1], struct qerr *err)
{
	if (rn->name && !run_name_valid(rn->name))
		return qerr_set(err, "invalid container name \"%s\" ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128)",
		                rn->name);
	autoclose int dirfd = live_open(st, err);
	if (dirfd < 0)
		return -1;
	/* Names: check and publish under the directory's lock, so two runs cannot both take one. */
	if (rn->name && flock(dirfd, LOCK_EX) < 0)
		return qerr_sys(err, "lock %s/%s", st->root, LIVE_DIR);
	if (rn->name && name_check(dirfd, rn->name, err) < 0)
		return -1;
	random_hex(id, RUN_ID_LEN);
	id[RUN_ID_LEN] = '\0';
	return record_publish(dirfd, id, rn, err);
}

void run_record_started(int fd, pid_t init)
{
	char line[32];
	int n = snprintf(line, sizeof line, "init %ld\n", (long)init);
	/* One write at the end: a reader sees the whole line or none of it (ps ignores a line without its '\n'). */
	if (fd >= 0 && lseek(fd, 0, SEEK_END) >= 0)
		(void)write_all(fd, line, (size_t)n);
}

void run_record_remove(struct store *st, const char *id, int fd)
{
	autofree char *rel = xasprintf("%s/%s", LIVE_DIR, id);
	(void)unlinkat(st->rootfd, rel, 0);
	if (fd >= 0)
		close(fd);
}

int run_record_find(struct store *st, const char *key, struct run_record *out, struct qerr *err)
{
	struct run_record *v;
	size_t n;
	if (run_records_list(st, &v, &n, NULL, err) < 0)
		return -1;
	size_t hit = n, hits = 0, klen = strlen(key);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i].name, key) || !strcmp(v[i].id, key)) {
			hit = i;
			hits = 1;
			break;
		}
		if (klen > 0 && strspn(key, "0123456789abcdef") == klen && !strncmp(v[i].id, key, klen)) {
			hit = i;
			hits++;
		}
	}
	int rc = 0;
	if (hits == 0)
		rc = qerr_set(err, "no such container: %s (see qimg ps)", key);
	else if (hits > 1)
		rc = qerr_set(err, "container id prefix %s is ambiguous: give more digits", key);
	else {
		*out = v[hit];
		memset(&v[hit], 0, sizeof v[hit]);
	}
	run_records_free(v, n);
	return rc;
}
