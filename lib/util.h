/* Shared base helpers: error values, logging, checked allocation, cleanup attributes, small fs helpers. */
#ifndef QIMG_UTIL_H
#define QIMG_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* An error value: what was being done to what, and why. Filled by the failing function, printed only by cmd/. */
struct qerr {
	int code;        /* errno-like cause, 0 when not from a syscall */
	int exit_status; /* suggested exit status (0 = default 125/1 chosen by cmd/) */
	char msg[1024];
};

/* Fill err with a formatted message; returns -1 so callers can `return qerr_set(...)`. */
int qerr_set(struct qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)" (errno read on entry). */
int qerr_sys(struct qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message: "pull: " + old message. */
int qerr_wrap(struct qerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logging on stderr; level set once by cmd/ from -v/-vv/-q. */
enum { LOG_QUIET = -1, LOG_NORMAL = 0, LOG_VERBOSE = 1, LOG_DEBUG = 2 };
extern int qlog_level; /* the one process-wide setting, written only by cmd/ at start */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_warn(...)  log_msg(LOG_NORMAL, "warning: " __VA_ARGS__)
#define log_info(...)  log_msg(LOG_VERBOSE, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Allocation that cannot fail (aborts with a message on OOM). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Cleanup helpers for locals. */
void autofree_fn(void *p);
void autoclose_fn(int *fd);
#define autofree  __attribute__((cleanup(autofree_fn)))
#define autoclose __attribute__((cleanup(autoclose_fn)))

/* A growable string list (argv-like, NULL terminated). */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_push(struct strv *s, const char *str); /* copies str */
void strv_push_take(struct strv *s, char *str);  /* takes ownership */
void strv_free(struct strv *s);

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};
void buf_append(struct buf *b, const void *data, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Filesystem helpers. All fds O_CLOEXEC. */
int mkdir_p(const char *path, mode_t mode, struct qerr *err);
int mkdirat_p(int dirfd, const char *rel, mode_t mode, struct qerr *err);
/* Read a whole (small) file; NUL-terminated; *len_out optional. max caps the size. */
char *read_file_at(int dirfd, const char *path, size_t max, size_t *len_out, struct qerr *err);
/* Write data to dirfd/path atomically: tmp file in the same dir, fsync when durable, rename. */
int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode, bool durable,
                         struct qerr *err);
/* Remove a tree below dirfd/name without following symlinks; missing is not an error. */
int rm_rf_at(int dirfd, const char *name, struct qerr *err);
/* path below dirfd opened with flags, one component at a time with O_NOFOLLOW, refusing ".." (EXDEV): what
   openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) opens, where openat2 is missing (ENOSYS: kernels before 5.6,
   valgrind 3.19, seccomp filters that do not know it). */
int openat_walk(int dirfd, const char *path, int flags);
/* path below dirfd opened with flags, never through a symlink, a magic link, ".." or onto another mount:
   openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), or openat_walk where openat2 is missing
   (which cannot see mount points: the trees it serves - layers, uppers, export targets - hold none). For anything
   an image or a container wrote. */
int openat_beneath(int dirfd, const char *path, int flags);
/* An executable named name: the first in $PATH's absolute dirs, then in fallback (colon-separated dirs, may be
   NULL). Caller frees; NULL when there is none. */
char *path_find(const char *name, const char *fallback);
/* Raise the soft RLIMIT_NOFILE to the hard one (for walks that keep one directory fd per level); best effort. */
void nofile_raise(void);
/* Field number `field` (counted from 1 as in proc(5), 3 or more: after the command name) of /proc/PID/stat. */
int proc_stat_field(pid_t pid, int field, uint64_t *out);
/* Write all bytes, retrying on EINTR/short writes. */
int write_all(int fd, const void *data, size_t len);
/* pwrite all bytes at off, retrying on EINTR/short writes. */
int pwrite_all(int fd, const void *data, size_t len, off_t off);
/* The next data region of fd (a file of size bytes) at or after from, by SEEK_DATA/SEEK_HOLE: 1 and
   [*start, *end), 0 when only a hole (or nothing) is left, -1 (errno) on error. Where the filesystem cannot say
   (EINVAL), all of [from, size) is data. Moves fd's offset: read with pread. */
int fd_data_next(int fd, off_t from, off_t size, off_t *start, off_t *end);
/* Random hex string of n chars (n <= 64) from getrandom. */
void random_hex(char *out, size_t n);
/* Monotonic time in seconds as a double. */
double now_mono(void);

/* Escape a value for a one-line text record: backslash, newline, tab -> \\ \n \t. Caller frees. */
char *line_escape(const char *s);
/* Unescape in place. */
void line_unescape(char *s);

/* How many lowercase hex digits s starts with (the one hex check: digests, layer ids, run ids, id prefixes). */
size_t hex_span(const char *s);
/* s is exactly n lowercase hex digits. */
bool hex_exact(const char *s, size_t n);
/* A decimal id (uid or gid, at most 10 digits, below UINT32_MAX), nothing else. */
bool id_parse(const char *s, uint32_t *out);
/* Split one colon-separated line into at most max fields, in place; returns how many. */
int colon_split(char *line, char **f, int max);
/* In passwd-format text (NULL: none), the entry named name, or (name NULL) the one of *uid: its uid, gid and,
   when asked, its name and home ("/" when empty; caller frees). */
bool passwd_text_find(const char *text, const char *name, const uint32_t *uid, uint32_t *uid_out, uint32_t *gid_out,
                      char **name_out, char **home_out);
/* The passwd entry of uid: /etc/passwd first, else `getent passwd` (NSS); name and home are set (caller frees)
   or NULL. qimg is linked statically, so getpwuid() with its NSS modules is not available to it. */
int passwd_entry(uid_t uid, char **name, char **home);

/* Parse "10", "10k", "2G" (1024-based) into bytes; -1 on error. */
int64_t parse_size(const char *s);
/* Parse "30s", "10m", "7d", "2h" into seconds; -1 on error. */
int64_t parse_duration(const char *s);

#endif
