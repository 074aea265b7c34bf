/* Live runs: live/slot-N, small line files each flock'ed by one run's qimg for the run's life (ps, kill, gc).
   Slots are reused rather than created and removed per run: creating a file on ext4 costs ~130 us in a fresh
   process here, more than the whole budget; opening, locking and overwriting an existing one ~35 us. */
#include "run_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LIVE_DIR    "live"
#define SLOT_PREFIX "slot-"
#define SLOTS_MAX   4096
#define RECORD_MAX  (64u << 10)
#define END_LINE    "end\n"
#define FREE_MARK   "-" /* written over the "i" of "id": the slot holds no run */

static void record_line(struct buf *b, const char *key, const char *value)
{
	autofree char *esc = line_escape(value ? value : "");
	buf_printf(b, "%s %s\n", key, esc);
}


/* Parse a record up to its "end" line (what follows is an older, longer record's tail). 0 when complete. */
static int record_parse(char *text, struct run_record *r)
{
	bool end = false;
	memset(r, 0, sizeof *r);
	for (char *line = text, *nl; !end && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		end = !strcmp(line, "end");
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = '\0';
		line_unescape(v);
		if (!strcmp(line, "id") && hex_exact(v, RUN_ID_LEN))
			memcpy(r->id, v, RUN_ID_LEN + 1);
		else if (!strcmp(line, "name"))
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
	if (end && r->pid > 0 && r->id[0])
		return 0;
	run_record_free(r); /* a record still being written: nothing of it is kept */
	return -1;
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

enum { REC_FREE, REC_STALE, REC_LIVE };

/* One slot: REC_LIVE (*r filled), REC_STALE (it held a run whose qimg is gone, kill -9: now marked free),
   REC_FREE (no run, or one still writing its record), -1 on error. */
static int slot_check(int dirfd, const char *slot, struct run_record *r, struct qerr *err)
{
	bool rw = true;
	autoclose int fd = openat(dirfd, slot, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == EACCES) { /* another user's store: look, but mark nothing */
		rw = false;
		fd = openat(dirfd, slot, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return errno == ENOENT ? REC_FREE : qerr_sys(err, "open %s/%s", LIVE_DIR, slot);
	bool unlocked = flock(fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0;
	if (!unlocked && errno != EWOULDBLOCK)
		return qerr_sys(err, "lock %s/%s", LIVE_DIR, slot);
	autofree char *text = fd_read_all(fd);
	if (!text)
		return qerr_sys(err, "read %s/%s", LIVE_DIR, slot);
	if (unlocked) {
		if (strncmp(text, "id ", 3) != 0 || !rw)
			return REC_FREE;
		if (pwrite(fd, FREE_MARK, 1, 0) != 1)
			return qerr_sys(err, "mark stale run record %s/%s free", LIVE_DIR, slot);
		return REC_STALE;
	}
	return record_parse(text, r) == 0 ? REC_LIVE : REC_FREE;
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

/* Every live record (stale ones marked free on the way; *stale counts them when given). */
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
		if (strncmp(e->d_name, SLOT_PREFIX, strlen(SLOT_PREFIX)) != 0)
			continue;
		struct run_record r;
		int c = slot_check(dirfd, e->d_name, &r, err);
		if (c < 0)
			rc = -1;
		else if (c == REC_STALE && stale)
			(*stale)++;
		if (c != REC_LIVE)
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

static char *record_text(const char *id, const struct run_record_new *rn, size_t *len)
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
	buf_printf(&b, "%s", END_LINE);
	buf_free(&cmd);
	*len = b.len;
	return b.p;
}

/* The first slot no live run holds, locked; created when all are taken. */
static int slot_take(struct store *st, struct qerr *err)
{
	char rel[sizeof LIVE_DIR + sizeof SLOT_PREFIX + 16];
	for (unsigned i = 0; i < SLOTS_MAX; i++) {
		snprintf(rel, sizeof rel, "%s/%s%u", LIVE_DIR, SLOT_PREFIX, i);
		int fd = openat(st->rootfd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0 && errno == ENOENT) { /* a store made before live/ existed */
			autoclose int dirfd = live_open(st, err);
			if (dirfd < 0)
				return -1;
			fd = openat(st->rootfd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		}
		if (fd < 0)
			return qerr_sys(err, "store %s: open %s", st->root, rel);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK) {
			qerr_sys(err, "store %s: lock %s", st->root, rel);
			close(fd);
			return -1;
		}
		close(fd);
	}
	return qerr_set(err, "store %s: %d runs are live, no free slot in %s/", st->root, SLOTS_MAX, LIVE_DIR);
}

/* Fill a taken slot from offset 0 (the file offset ends after the "end" line, where run_record_started goes). */
static int record_publish(struct store *st, const char *id, const struct run_record_new *rn, struct qerr *err)
{
	int fd = slot_take(st, err);
	if (fd < 0)
		return -1;
	size_t len;
	autofree char *text = record_text(id, rn, &len);
	if (write_all(fd, text, len) < 0) {
		qerr_sys(err, "store %s: write the run's record", st->root);
		(void)pwrite(fd, FREE_MARK, 1, 0);
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
	random_hex(id, RUN_ID_LEN);
	id[RUN_ID_LEN] = '\0';
	if (!rn->name) /* the common case: no directory lock */
		return record_publish(st, id, rn, err);
	autoclose int dirfd = live_open(st, err);
	if (dirfd < 0)
		return -1;
	/* Names: check and publish under the directory's lock, so two runs cannot both take one. */
	if (flock(dirfd, LOCK_EX) < 0)
		return qerr_sys(err, "lock %s/%s", st->root, LIVE_DIR);
	if (name_check(dirfd, rn->name, err) < 0)
		return -1;
	return record_publish(st, id, rn, err);
}

void run_record_started(int fd, pid_t init)
{
	char line[48];
	int n = snprintf(line, sizeof line, "init %ld\n%s", (long)init, END_LINE);
	/* Over the "end" line, in one write: a reader sees the old end or the new one. */
	if (fd >= 0 && lseek(fd, -(off_t)strlen(END_LINE), SEEK_CUR) >= 0)
		(void)write_all(fd, line, (size_t)n);
}

void run_record_end(int fd)
{
	if (fd < 0)
		return;
	(void)pwrite(fd, FREE_MARK, 1, 0);
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
		if (klen > 0 && hex_span(key) == klen && !strncmp(v[i].id, key, klen)) {
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

/* The parent pid of pid (field 4 of /proc/PID/stat), or -1. */
static pid_t proc_ppid(pid_t pid)
{
	uint64_t ppid;
	return proc_stat_field(pid, 4, &ppid) < 0 ? -1 : (pid_t)ppid;
}

/* KILL goes to PID 1 (the whole pid namespace dies with it); the others to qimg, which forwards them.
   The target is pinned with a pidfd first, then checked to still be the run's (its record still live, so its qimg
   is alive; PID 1 still qimg's child): a run that ended meanwhile never gets a reused pid signalled. */
int run_record_signal(struct store *st, const char *key, int sig, struct qerr *err)
{
	struct run_record rec, again;
	struct qerr ignore;
	if (run_record_find(st, key, &rec, err) < 0)
		return -1;
	pid_t target = sig == SIGKILL && rec.init > 0 ? rec.init : rec.pid;
	int rc = 0;
	int pfd = (int)syscall(SYS_pidfd_open, target, 0);
	if (pfd < 0 && errno == ENOSYS) { /* before Linux 5.3 */
		if (kill(target, sig) < 0 && errno != ESRCH)
			rc = qerr_sys(err, "kill %s (pid %ld)", key, (long)target);
	} else if (pfd < 0) {
		if (errno != ESRCH)
			rc = qerr_sys(err, "kill %s: pidfd_open %ld", key, (long)target);
	} else {
		bool live = run_record_find(st, rec.id, &again, &ignore) == 0;
		bool same = live && again.pid == rec.pid && (target == rec.pid || proc_ppid(target) == rec.pid);
		if (live)
			run_record_free(&again);
		if (same && syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0 && errno != ESRCH)
			rc = qerr_sys(err, "kill %s (pid %ld)", key, (long)target);
		close(pfd);
	}
	run_record_free(&rec);
	return rc;
}
