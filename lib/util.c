/* Shared base helpers: error values, logging, checked allocation, small string and filesystem helpers. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int qlog_level = LOG_NORMAL;

static void qerr_vset(struct qerr *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return;
	err->code = code;
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int qerr_set(struct qerr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qerr_vset(err, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int qerr_sys(struct qerr *err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	qerr_vset(err, saved, fmt, ap);
	va_end(ap);
	if (err) {
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(saved));
	}
	errno = saved;
	return -1;
}

int qerr_wrap(struct qerr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char prefix[512], old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t n = strnlen(prefix, sizeof prefix);
	if (n >= sizeof err->msg)
		n = sizeof err->msg - 1;
	memcpy(err->msg, prefix, n);
	size_t rest = sizeof err->msg - 1 - n, olen = strnlen(old, sizeof old);
	if (olen > rest)
		olen = rest;
	memcpy(err->msg + n, old, olen);
	err->msg[n + olen] = '\0';
	return -1;
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > qlog_level)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write so lines of concurrent workers do not interleave. */
	(void)write_all(STDERR_FILENO, "qimg: ", 6);
	(void)write_all(STDERR_FILENO, line, (size_t)n);
}

static _Noreturn void oom(void)
{
	static const char m[] = "qimg: out of memory\n";
	(void)write_all(STDERR_FILENO, m, sizeof m - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	char *p;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return p;
}

void autofree_fn(void *p)
{
	free(*(void **)p);
}

void autoclose_fn(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

void strv_push_take(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void strv_push(struct strv *s, const char *str)
{
	strv_push_take(s, xstrdup(str));
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

void buf_append(struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	buf_append(b, s, (size_t)n);
	free(s);
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		off += w;
		len -= (size_t)w;
	}
	return 0;
}

int fd_data_next(int fd, off_t from, off_t size, off_t *start, off_t *end)
{
	if (from >= size)
		return 0;
	off_t d = lseek(fd, from, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return 0;
	if (d < 0 && errno == EINVAL) {
		*start = from;
		*end = size;
		return 1;
	}
	if (d < 0)
		return -1;
	if (d >= size)
		return 0;
	off_t h = lseek(fd, d, SEEK_HOLE);
	if (h < 0)
		return -1;
	*start = d;
	*end = h < size ? h : size;
	return 1;
}

int mkdirat_p(int dirfd, const char *rel, mode_t mode, struct qerr *err)
{
	autofree char *copy = xstrdup(rel);
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdirat(dirfd, copy, mode) < 0 && errno != EEXIST)
			return qerr_sys(err, "mkdir %s", copy);
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int mkdir_p(const char *path, mode_t mode, struct qerr *err)
{
	return mkdirat_p(AT_FDCWD, path, mode, err);
}

char *read_file_at(int dirfd, const char *path, size_t max, size_t *len_out, struct qerr *err)
{
	autoclose int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		qerr_sys(err, "open %s", path);
		return NULL;
	}
	struct buf b = {0};
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			qerr_sys(err, "read %s", path);
			buf_free(&b);
			return NULL;
		}
		if (r == 0)
			break;
		if (b.len + (size_t)r > max) {
			qerr_set(err, "read %s: file larger than %zu bytes", path, max);
			buf_free(&b);
			return NULL;
		}
		buf_append(&b, chunk, (size_t)r);
	}
	if (!b.p)
		buf_append(&b, "", 0);
	if (len_out)
		*len_out = b.len;
	return b.p;
}

int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode, bool durable,
                         struct qerr *err)
{
	char rnd[17];
	random_hex(rnd, 16);
	autofree char *tmp = xasprintf("%s.tmp-%d-%s", path, (int)getpid(), rnd);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return qerr_sys(err, "create %s", tmp);
	if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0) || fchmod(fd, mode) < 0) {
		qerr_sys(err, "write %s", tmp);
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (close(fd) < 0) {
		qerr_sys(err, "close %s", tmp);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		qerr_sys(err, "rename %s", path);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* Remove the contents of directory fd (consumed) recursively, without following symlinks. */
static int rm_contents(int fd, const char *name, struct qerr *err)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return qerr_sys(err, "opendir %s", name);
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		rc = rm_rf_at(dirfd(d), e->d_name, err);
	}
	if (rc == 0 && errno != 0)
		rc = qerr_sys(err, "readdir %s", name);
	closedir(d);
	return rc;
}

/* chmod the directory dirfd/name, never through a symlink: fchmodat has no working AT_SYMLINK_NOFOLLOW, so the
   directory is pinned with an O_PATH|O_NOFOLLOW fd first and changed through its /proc/self/fd link. */
static int chmod_dir_nofollow(int dirfd, const char *name, mode_t mode)
{
	autoclose int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	return chmod(proc, mode);
}

int rm_rf_at(int dirfd, const char *name, struct qerr *err)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return qerr_sys(err, "remove %s", name);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == EACCES) {
			/* A dir without search/read permission for us (e.g. mode 0000 in an image): open it up first.
			 */
			if (chmod_dir_nofollow(dirfd, name, 0700) == 0)
				fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0)
			return qerr_sys(err, "open %s", name);
	}
	struct stat stbuf;
	if (fstat(fd, &stbuf) == 0 && (stbuf.st_mode & 0700) != 0700)
		(void)fchmod(fd, stbuf.st_mode | 0700);
	if (rm_contents(fd, name, err) < 0)
		return -1;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return qerr_sys(err, "rmdir %s", name);
	return 0;
}

void random_hex(char *out, size_t n)
{
	unsigned char raw[32];
	size_t need = (n + 1) / 2;
	if (need > sizeof raw)
		need = sizeof raw;
	if (getrandom(raw, need, 0) != (ssize_t)need) {
		/* getrandom never fails for <= 256 bytes once the pool is ready; fall back to time+pid mixing. */
		unsigned long x =
		    (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^ (unsigned long)(uintptr_t)out;
		for (size_t i = 0; i < need; i++) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			raw[i] = (unsigned char)(x >> 56);
		}
	}
	static const char hex[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < n && i < 64; i++)
		out[i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
	out[i] = '\0';
}

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *line_escape(const char *s)
{
	struct buf b = {0};
	buf_append(&b, "", 0);
	for (; *s; s++) {
		switch (*s) {
		case '\\': buf_append(&b, "\\\\", 2); break;
		case '\n': buf_append(&b, "\\n", 2); break;
		case '\t': buf_append(&b, "\\t", 2); break;
		default: buf_append(&b, s, 1);
		}
	}
	return b.p;
}

void line_unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '\\' && r[1]) {
			r++;
			*w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || v > 1e18) /* !(v >= 0): NaN too */
		return -1;
	int64_t mul = 1;
	static const char units[] = "KMGT";
	char c = (char)(*end & ~0x20); /* upper case; a space becomes NUL, which strchr would find */
	const char *u = c ? strchr(units, c) : NULL;
	if (*end && !u)
		return -1;
	if (u) {
		mul = 1LL << (10 * (u - units + 1));
		end++;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v * (double)mul >= 0x1p63)
		return -1;
	return (int64_t)(v * (double)mul);
}

int64_t parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !(v >= 0) || v > 1e15) /* !(v >= 0): NaN too */
		return -1;
	int64_t mul;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else if (!strcmp(end, "w"))
		mul = 7 * 86400;
	else
		return -1;
	return (int64_t)(v * (double)mul);
}

/* ---- the caller's passwd entry, without NSS in this (static) binary ---- */

size_t hex_span(const char *s)
{
	return strspn(s, "0123456789abcdef");
}

bool hex_exact(const char *s, size_t n)
{
	return s && hex_span(s) == n && s[n] == '\0';
}

bool id_parse(const char *s, uint32_t *out)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || s[n] || n > 10)
		return false;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v > UINT32_MAX - 1)
		return false;
	*out = (uint32_t)v;
	return true;
}

int colon_split(char *line, char **f, int max)
{
	int n = 0;
	f[n++] = line;
	for (char *p = line; *p && n < max; p++) {
		if (*p == ':') {
			*p = '\0';
			f[n++] = p + 1;
		}
	}
	return n;
}

bool passwd_text_find(const char *text, const char *name, const uint32_t *uid, uint32_t *uid_out, uint32_t *gid_out,
                      char **name_out, char **home_out)
{
	if (!text)
		return false;
	autofree char *copy = xstrdup(text);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[7];
		uint32_t id, gid;
		if (colon_split(line, f, 7) < 7 || !id_parse(f[2], &id) || !id_parse(f[3], &gid))
			continue;
		if (name ? strcmp(f[0], name) != 0 : id != *uid)
			continue;
		*uid_out = id;
		*gid_out = gid;
		if (name_out)
			*name_out = xstrdup(f[0]);
		if (home_out)
			*home_out = xstrdup(*f[5] ? f[5] : "/");
		return true;
	}
	return false;
}

/* `getent passwd UID`: NSS (LDAP, sssd, systemd-homed) through the system's own tool. */
static char *getent_passwd(uid_t uid)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	char num[16];
	snprintf(num, sizeof num, "%u", (unsigned)uid);
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(127);
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull >= 0)
			(void)dup2(devnull, STDERR_FILENO);
		execlp("getent", "getent", "passwd", num, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	struct buf out = {0};
	char chunk[1024];
	ssize_t n;
	while (pid > 0 && out.len < 65536 && ((n = read(p[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			buf_append(&out, chunk, (size_t)n);
	close(p[0]);
	int st = 0;
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		buf_free(&out);
		return NULL;
	}
	buf_append(&out, "", 1);
	return out.p;
}

int passwd_entry(uid_t uid, char **name, char **home)
{
	if (name)
		*name = NULL;
	if (home)
		*home = NULL;
	struct qerr ignore;
	autofree char *files = read_file_at(AT_FDCWD, "/etc/passwd", 16u << 20, NULL, &ignore);
	uint32_t want = uid, id, gid;
	if (passwd_text_find(files, NULL, &want, &id, &gid, name, home))
		return 0;
	autofree char *nss = getent_passwd(uid);
	return passwd_text_find(nss, NULL, &want, &id, &gid, name, home) ? 0 : -1;
}

void nofile_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

char *path_find(const char *name, const char *fallback)
{
	const char *path = getenv("PATH");
	autofree char *dirs = xasprintf("%s:%s", path ? path : "", fallback ? fallback : "");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", d, name);
		if (*d == '/' && access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int openat_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	                       .resolve =
	                           RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
	if (flags & O_PATH)
		how.flags &= ~(uint64_t)O_NOFOLLOW; /* O_PATH|O_NOFOLLOW would open a final symlink itself */
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS)
		return openat_walk(dirfd, path, flags);
	return fd;
}

int openat_walk(int dirfd, const char *path, int flags)
{
	if (*path == '/') {
		errno = EXDEV;
		return -1;
	}
	autofree char *copy = xstrdup(path);
	char *save = NULL;
	char *c = strtok_r(copy, "/", &save);
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	while (c && fd >= 0) {
		char *rest = strtok_r(NULL, "/", &save);
		int next = -1, saved = EXDEV;
		if (strcmp(c, "..") != 0) {
			next = openat(fd, c,
			              rest ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
			                   : flags | O_NOFOLLOW | O_CLOEXEC);
			saved = errno;
		}
		close(fd);
		errno = saved;
		fd = next;
		c = rest;
	}
	return fd;
}

/* path's first size-1 bytes, NUL-terminated: 0, or -1 (errno). */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	int saved = errno;
	close(fd);
	if (n <= 0) {
		errno = n < 0 ? saved : EIO;
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

int proc_stat_field(pid_t pid, int field, uint64_t *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (field < 3 || read_small(path, buf, sizeof buf) < 0)
		return -1;
	char *p = strrchr(buf, ')'); /* comm may contain spaces and parens */
	if (!p)
		return -1;
	/* p moves to the space before field N (fields count from 1; comm is field 2). */
	for (int f = 3; f <= field; f++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	*out = strtoull(p + 1, NULL, 10);
	return 0;
}
