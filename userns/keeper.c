/* The per-user keeper: a tiny process holding a user namespace with the full subuid map, joined by every run. */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPER_RECORD   "keeper"
#define KEEPER_LOCK     "keeper.lock"
#define HELPER_ERR_MAX  512
#define KEEPER_TITLE    "qimg-keeper"
#define ARGS_MAX        (1u << 20)
#define TRIM_RANGES_MAX 1024
#define TRIM_MIN        (1ul << 20) /* anonymous mappings at least this big are given back (keeper_trim) */
/* After $PATH: where the uidmap package puts newuidmap and newgidmap. */
#define KEEPER_HELPER_DIRS "/usr/bin:/bin:/usr/sbin:/sbin"

struct keeper_rec {
	pid_t pid;
	uint64_t ino;   /* inode of its user namespace */
	uint64_t start; /* start time (clock ticks since boot, /proc/PID/stat field 22): defeats pid reuse */
	char map[USERNS_MAP_MAX]; /* its uid/gid map (userns_join); "" in records of older qimg versions */
};

/* ---- where the record lives ---- */

/* Open dir (creating it 0700), refusing anything that is not a real directory owned by us and private. */
static int private_dir_open(const char *dir, struct qerr *err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "keeper: mkdir %s", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return qerr_sys(err, "keeper: open %s", dir);
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return qerr_sys(err, "keeper: stat %s", dir);
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
		close(fd);
		return qerr_set(err, "keeper: %s is not a private directory owned by uid %u: refusing to use it", dir,
		                (unsigned)geteuid());
	}
	return fd;
}

/* $XDG_RUNTIME_DIR/qimg, else /tmp/qimg-<uid>. Caller frees. */
static char *keeper_dir_path(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && *xdg == '/')
		return xasprintf("%s/qimg", xdg);
	return xasprintf("/tmp/qimg-%u", (unsigned)geteuid());
}

static int keeper_dir_open(struct qerr *err)
{
	autofree char *dir = keeper_dir_path();
	return private_dir_open(dir, err);
}

/* ---- verifying a recorded keeper ---- */

/* A small file's first bytes, NUL-terminated; -1 when it cannot be opened or is empty. Never follows a symlink
   in the last component. */
static int read_small_at(int dirfd, const char *path, char *buf, size_t size)
{
	autoclose int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int proc_start_time(pid_t pid, uint64_t *out)
{
	return proc_stat_field(pid, 22, out);
}

static int rec_read(int dirfd, struct keeper_rec *r)
{
	char buf[128 + USERNS_MAP_MAX];
	if (read_small_at(dirfd, KEEPER_RECORD, buf, sizeof buf) < 0)
		return -1;
	int pid, off = 0;
	unsigned long long ino, start;
	if (sscanf(buf, "%d %llu %llu %n", &pid, &ino, &start, &off) != 3 || pid <= 1 || off <= 0)
		return -1;
	*r = (struct keeper_rec){pid, ino, start, ""};
	snprintf(r->map, sizeof r->map, "%.*s", (int)strcspn(buf + off, "\n"), buf + off);
	return 0;
}

/* One /proc/PID/{uid,gid}_map as "0:1000:1,1:100000:65536" appended to b. */
static int map_file_put(pid_t pid, const char *which, struct buf *b)
{
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%d/%s_map", (int)pid, which);
	if (read_small_at(AT_FDCWD, path, text, sizeof text) < 0)
		return -1;
	buf_printf(b, "%c", which[0]);
	char *save = NULL;
	int n = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long in, out, count;
		if (sscanf(line, "%lu %lu %lu", &in, &out, &count) != 3)
			return -1;
		buf_printf(b, "%s%lu:%lu:%lu", n++ ? "," : "", in, out, count);
	}
	return n > 0 ? 0 : -1;
}

/* The id map of pid's user namespace in userns_idmap_string's form, into map (USERNS_MAP_MAX bytes). */
static int map_from_proc(pid_t pid, char *map)
{
	struct buf b = {0};
	int rc = map_file_put(pid, "uid", &b) == 0 && (buf_printf(&b, " "), map_file_put(pid, "gid", &b)) == 0 &&
	                 b.len < USERNS_MAP_MAX
	             ? 0
	             : -1;
	if (rc == 0)
		memcpy(map, b.p, b.len + 1);
	buf_free(&b);
	return rc;
}

/* Open the recorded keeper's user namespace if it is still the same process, namespace and owner. */
static int rec_open_ns(const struct keeper_rec *r)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)r->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat sb;
	uid_t owner = (uid_t)-1; /* set: valgrind does not know that NS_GET_OWNER_UID writes it */
	uint64_t start;
	/* Start time read after the open: a reused pid shows a different start, whenever the reuse happened. */
	if (fstat(fd, &sb) < 0 || sb.st_ino != r->ino || ioctl(fd, NS_GET_OWNER_UID, &owner) < 0 ||
	    owner != geteuid() || proc_start_time(r->pid, &start) < 0 || start != r->start) {
		close(fd);
		return -1;
	}
	return fd;
}

static int join(int nsfd, struct qerr *err)
{
	if (setns(nsfd, CLONE_NEWUSER) == 0)
		return 0;
	if (errno == EINVAL) {
		/* Already inside it (a second call in one process) is success. */
		struct stat self, target;
		if (stat("/proc/self/ns/user", &self) == 0 && fstat(nsfd, &target) == 0 && self.st_ino == target.st_ino)
			return 0;
		errno = EINVAL;
	}
	return qerr_sys(err, "keeper: join its user namespace (setns)");
}

/* ---- creating the keeper ---- */

/* Our command line is the run's that forked us ("qimg run IMAGE ..."): overwrite it in place so ps and pgrep show
   what we are (the kernel reads /proc/PID/cmdline from our own memory between arg_start and arg_end). */
static void keeper_retitle(void)
{
	uint64_t start, end; /* arg_start and arg_end: fields 48 and 49 */
	if (proc_stat_field(getpid(), 48, &start) < 0 || proc_stat_field(getpid(), 49, &end) < 0 ||
	    end <= start || end - start > ARGS_MAX)
		return;
	char *args = (char *)(uintptr_t)start;
	size_t len = end - start;
	memset(args, 0, len);
	memcpy(args, KEEPER_TITLE, len < sizeof KEEPER_TITLE ? len - 1 : sizeof KEEPER_TITLE);
}

/* In the short-lived middle process: everything the keeper inherits (name, command line, cwd, signal dispositions).
   Done here, the library code it runs is faulted in by this process, not by the keeper: the keeper's RSS stays
   what it touches itself (a few syscalls). */
static void keeper_prepare(void)
{
	(void)setsid();
	(void)prctl(PR_SET_NAME, KEEPER_TITLE, 0, 0, 0);
	keeper_retitle();
	(void)!chdir("/");
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGTERM && sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_IGN);
	(void)signal(SIGTERM, SIG_DFL);
	sigset_t all;
	sigfillset(&all);
	(void)sigprocmask(SIG_UNBLOCK, &all, NULL);
}

/* One line of /proc/self/maps: "start-end perms offset dev inode [path]". */
struct maps_line {
	unsigned long start, end, inode;
	bool writable, private, named, heap;
};

static bool maps_parse(const char *line, struct maps_line *m)
{
	char *p;
	m->start = strtoul(line, &p, 16);
	if (*p != '-')
		return false;
	m->end = strtoul(p + 1, &p, 16);
	while (*p == ' ')
		p++;
	m->writable = p[0] && p[1] == 'w';
	m->private = p[0] && p[1] && p[2] && p[3] == 'p';
	for (int field = 0; field < 3 && p; field++) /* perms, offset, dev */
		p = strchr(p + 1, ' ');
	if (!p)
		return false;
	m->inode = strtoul(p, &p, 10);
	while (*p == ' ')
		p++;
	m->heap = strncmp(p, "[heap]", 6) == 0;
	m->named = *p && *p != '\n' && !m->heap;
	return true;
}

static const char *maps_next(const char *line)
{
	const char *nl = strchr(line, '\n');
	return nl ? nl + 1 : NULL;
}

/* The inode of the file mapped at addr (0: anonymous or none). */
static unsigned long maps_inode_at(const char *maps, unsigned long addr)
{
	struct maps_line m;
	for (const char *line = maps; line && *line && maps_parse(line, &m); line = maps_next(line))
		if (addr >= m.start && addr < m.end)
			return m.inode;
	return 0;
}

/* Give back what the keeper inherited from a busy parent (qimg-pull: its malloc heap, thread arenas and stacks,
   and the relocated pages of libcurl, libcrypto, libarchive...: megabytes) so its RSS is only what it touches.
   Kept: this executable, libc and the dynamic loader (the keeper still runs them), named mappings ([stack]...),
   the TLS block, and small anonymous blocks (the loader's data, libraries' .bss). Runs in the middle process; after it
   nothing may use malloc or glibc's fork, and no other library may be called. */
static void keeper_trim(void)
{
	char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	unsigned long self = maps_inode_at(buf, (unsigned long)&keeper_trim);
	unsigned long libc = maps_inode_at(buf, (unsigned long)&pause);
	unsigned long ldso = getauxval(AT_BASE) ? maps_inode_at(buf, getauxval(AT_BASE)) : self;
	/* &pause resolving into the executable (a PLT stub) would hide libc: then leave the libraries alone. */
	bool libs = libc != self || !getauxval(AT_BASE);
	unsigned long tp = (unsigned long)__builtin_thread_pointer(), sp = (unsigned long)__builtin_frame_address(0);
	unsigned long prev_end = 0, prev_inode = 0;
	struct maps_line m;
	/* Decide everything first: once memory is given back, even strtoul may fault (locale data on the heap). */
	struct {
		unsigned long start, len;
	} drop[TRIM_RANGES_MAX];
	size_t ndrop = 0;
	for (const char *line = buf; line && *line && maps_parse(line, &m) && ndrop < TRIM_RANGES_MAX;
	     line = maps_next(line)) {
		bool ours = m.inode == self || m.inode == libc || m.inode == ldso;
		bool foreign = libs && m.inode != 0 && !ours && m.private;
		bool anon = m.inode == 0 && !m.named && m.writable && m.private;
		bool bss = anon && m.start == prev_end && prev_inode != 0;
		bool holds_us = (tp >= m.start && tp < m.end) || (sp >= m.start && sp < m.end);
		bool big = m.end - m.start >= TRIM_MIN; /* heap, arenas, thread stacks; not the loader's small blocks */
		if (!holds_us && (foreign || (anon && !bss && (big || m.heap))))
			drop[ndrop].start = m.start, drop[ndrop++].len = m.end - m.start;
		prev_end = m.end;
		prev_inode = m.inode;
	}
	for (size_t i = 0; i < ndrop; i++)
		(void)madvise((void *)drop[i].start, drop[i].len, MADV_DONTNEED);
}

/* The keeper itself: unshare the user namespace, report, drop every fd, wait for SIGTERM. Only syscall() from
   here on (resolved before keeper_trim): a first call through another PLT slot would need the loader's data. */
static __attribute__((noreturn)) void keeper_main(int report)
{
	struct {
		int pid, err;
	} msg = {(int)syscall(SYS_getpid), 0};
	if (syscall(SYS_unshare, CLONE_NEWUSER) < 0)
		msg.err = errno;
	if (report > 0)
		(void)syscall(SYS_close_range, 0, report - 1, 0);
	(void)syscall(SYS_close_range, report + 1, ~0U, 0);
	if (syscall(SYS_write, report, &msg, sizeof msg) != (long)sizeof msg || msg.err)
		syscall(SYS_exit_group, 1);
	(void)syscall(SYS_close, report);
	for (;;)
		(void)syscall(SYS_pause);
}

/* Fork a keeper detached from us (double fork, new session); returns its pid. */
static pid_t keeper_spawn(struct qerr *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return qerr_sys(err, "keeper: pipe");
	pid_t mid = fork();
	if (mid < 0) {
		close(p[0]);
		close(p[1]);
		return qerr_sys(err, "keeper: fork");
	}
	if (mid == 0) {
		close(p[0]);
		keeper_prepare();
		/* Bind syscall() and errno's accessor now, while the loader's data is intact. */
		errno = (int)syscall(SYS_getpid) & 0;
		keeper_trim();
		/* Raw clone: glibc's fork() would walk malloc arenas keeper_trim just zeroed. */
		long k = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
		if (k != 0)
			syscall(SYS_exit_group, k < 0);
		keeper_main(p[1]);
	}
	close(p[1]);
	int st;
	(void)waitpid(mid, &st, 0);
	struct {
		int pid, err;
	} msg = {0, 0};
	ssize_t n = read(p[0], &msg, sizeof msg);
	close(p[0]);
	if (n != (ssize_t)sizeof msg)
		return qerr_set(err, "keeper: the new keeper process died before reporting");
	if (msg.err) {
		errno = msg.err;
		return qerr_sys(err, "keeper: unshare(CLONE_NEWUSER) (are unprivileged user namespaces enabled?)");
	}
	return msg.pid;
}

struct helper {
	const char *name;
	pid_t pid;
	int errfd; /* read end of its stderr */
};

static int helper_start(struct helper *h, pid_t target, const struct idmap_range *r, int n, struct qerr *err)
{
	/* A setuid helper (newuidmap/newgidmap): $PATH, then the usual places. */
	autofree char *exe = path_find(h->name, KEEPER_HELPER_DIRS);
	if (!exe)
		return qerr_set(err, "%s not found (install the uidmap package; or QIMG_USERNS=single)", h->name);
	char args[2 + 3 * 2][16];
	char *argv[2 + 3 * 2 + 1];
	int a = 0;
	argv[a++] = (char *)h->name;
	snprintf(args[a], sizeof args[a], "%d", (int)target);
	argv[a] = args[a];
	a++;
	for (int i = 0; i < n; i++) {
		const uint32_t v[3] = {r[i].inside, r[i].outside, r[i].count};
		for (int k = 0; k < 3; k++, a++) {
			snprintf(args[a], sizeof args[a], "%u", v[k]);
			argv[a] = args[a];
		}
	}
	argv[a] = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return qerr_sys(err, "%s: pipe", h->name);
	h->pid = fork();
	if (h->pid < 0) {
		close(p[0]);
		close(p[1]);
		return qerr_sys(err, "%s: fork", h->name);
	}
	if (h->pid == 0) {
		(void)dup2(p[1], STDERR_FILENO);
		execv(exe, argv);
		_exit(127);
	}
	close(p[1]);
	h->errfd = p[0];
	return 0;
}

static int helper_wait(struct helper *h, struct qerr *err)
{
	char msg[HELPER_ERR_MAX];
	ssize_t n = read(h->errfd, msg, sizeof msg - 1);
	close(h->errfd);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	int st;
	while (waitpid(h->pid, &st, 0) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "%s: wait", h->name);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	return qerr_set(err, "%s failed%s%s", h->name, *msg ? ": " : "", msg);
}

/* Write the full map into the keeper's namespace (both helpers at once: each costs a few ms). */
static int keeper_map(pid_t pid, struct qerr *err)
{
	struct idmap m;
	if (userns_idmap_get(&m, err) < 0)
		return -1;
	struct helper hu = {"newuidmap", -1, -1}, hg = {"newgidmap", -1, -1};
	if (helper_start(&hu, pid, m.uid, m.nuid, err) < 0)
		return -1;
	struct qerr gerr = {0};
	int grc = helper_start(&hg, pid, m.gid, m.ngid, &gerr);
	int urc = helper_wait(&hu, err);
	if (grc == 0)
		grc = helper_wait(&hg, &gerr);
	if (urc < 0)
		return -1;
	if (grc < 0) {
		*err = gerr;
		return -1;
	}
	return 0;
}

static int keeper_create(int dirfd, struct qerr *err)
{
	pid_t pid = keeper_spawn(err);
	if (pid < 0)
		return -1;
	struct keeper_rec r = {.pid = pid};
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	int nsfd = -1;
	struct stat sb;
	if (keeper_map(pid, err) < 0)
		goto fail;
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || fstat(nsfd, &sb) < 0 || proc_start_time(pid, &r.start) < 0) {
		qerr_sys(err, "keeper: inspect process %d", (int)pid);
		goto fail;
	}
	r.ino = sb.st_ino;
	if (map_from_proc(pid, r.map) < 0) {
		qerr_set(err, "keeper: read the id map of process %d", (int)pid);
		goto fail;
	}
	char line[128 + USERNS_MAP_MAX];
	int len = snprintf(line, sizeof line, "%d %llu %llu %s\n", (int)r.pid, (unsigned long long)r.ino,
	                   (unsigned long long)r.start, r.map);
	if (write_file_atomic_at(dirfd, KEEPER_RECORD, line, (size_t)len, 0600, false, err) < 0)
		goto fail;
	log_info("keeper: started pid %d (user namespace %llu)", (int)pid, (unsigned long long)r.ino);
	return nsfd;
fail:
	(void)kill(pid, SIGKILL);
	if (nsfd >= 0)
		close(nsfd);
	return -1;
}

/* The map of the keeper joined: from its record, or for a record written by an older qimg from /proc. */
static int keeper_map_get(const struct keeper_rec *r, char *map, struct qerr *err)
{
	if (r->map[0]) {
		memcpy(map, r->map, sizeof r->map);
		return 0;
	}
	if (map_from_proc(r->pid, map) < 0)
		return qerr_set(err, "keeper: read the id map of process %d", (int)r->pid);
	return 0;
}

/* The live keeper (started if there is none): its record and an fd of its user namespace. */
static int keeper_get(struct keeper_rec *r, struct qerr *err)
{
	autoclose int dirfd = keeper_dir_open(err);
	if (dirfd < 0)
		return -1;
	int nsfd = rec_read(dirfd, r) == 0 ? rec_open_ns(r) : -1;
	if (nsfd >= 0)
		return nsfd;
	/* Slow path, once per boot (or after `keeper stop`): one creator at a time. */
	autoclose int lock = openat(dirfd, KEEPER_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0)
		return qerr_sys(err, "keeper: open lock");
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "keeper: lock");
	nsfd = rec_read(dirfd, r) == 0 ? rec_open_ns(r) : -1;
	if (nsfd < 0 && (nsfd = keeper_create(dirfd, err)) >= 0 && rec_read(dirfd, r) < 0) {
		close(nsfd);
		return qerr_set(err, "keeper: its record vanished after it started");
	}
	return nsfd;
}

int userns_keeper_open(bool create, char *map, struct qerr *err)
{
	struct keeper_rec r;
	int nsfd;
	if (!create) {
		/* Only a probe: a keeper dir we cannot use is reported by the path that needs it. */
		autoclose int dirfd = keeper_dir_open(err);
		nsfd = dirfd >= 0 && rec_read(dirfd, &r) == 0 ? rec_open_ns(&r) : -1;
		if (nsfd < 0)
			return USERNS_KEEPER_NONE;
	} else if ((nsfd = keeper_get(&r, err)) < 0) {
		return -1;
	}
	if (keeper_map_get(&r, map, err) < 0) {
		close(nsfd);
		return -1;
	}
	return nsfd;
}

int userns_keeper_join(int nsfd, struct qerr *err)
{
	return join(nsfd, err);
}

bool userns_helpers_found(void)
{
	autofree char *u = path_find("newuidmap", KEEPER_HELPER_DIRS);
	autofree char *g = path_find("newgidmap", KEEPER_HELPER_DIRS);
	return u && g;
}

/* ---- `qimg system keeper status|stop` ---- */

static uint64_t proc_rss_kb(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	struct qerr ignore;
	autofree char *s = read_file_at(AT_FDCWD, path, 1 << 16, NULL, &ignore);
	const char *p = s ? strstr(s, "\nVmRSS:") : NULL;
	return p ? strtoull(p + 7, NULL, 10) : 0;
}

int userns_keeper_status(struct userns_keeper_info *ki, struct qerr *err)
{
	memset(ki, 0, sizeof *ki);
	ki->dir = keeper_dir_path();
	if (geteuid() == 0)
		return 0;
	autoclose int dirfd = keeper_dir_open(err);
	if (dirfd < 0)
		return -1;
	struct keeper_rec r;
	if (rec_read(dirfd, &r) < 0)
		return 0;
	autoclose int nsfd = rec_open_ns(&r);
	if (nsfd < 0)
		return 0;
	ki->running = true;
	ki->pid = r.pid;
	ki->ns_inode = r.ino;
	ki->rss_kb = proc_rss_kb(r.pid);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)r.pid);
	struct qerr ignore;
	ki->uid_map = read_file_at(AT_FDCWD, path, 1 << 16, NULL, &ignore);
	return 0;
}

int userns_keeper_stop(bool *was_running, struct qerr *err)
{
	*was_running = false;
	if (geteuid() == 0)
		return 0;
	autoclose int dirfd = keeper_dir_open(err);
	if (dirfd < 0)
		return -1;
	autoclose int lock = openat(dirfd, KEEPER_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0)
		return qerr_sys(err, "keeper: lock");
	struct keeper_rec r;
	if (rec_read(dirfd, &r) == 0) {
		autoclose int nsfd = rec_open_ns(&r);
		if (nsfd >= 0) {
			if (kill(r.pid, SIGTERM) < 0 && errno != ESRCH)
				return qerr_sys(err, "keeper: kill %d", (int)r.pid);
			*was_running = true;
		}
	}
	if (unlinkat(dirfd, KEEPER_RECORD, 0) < 0 && errno != ENOENT)
		return qerr_sys(err, "keeper: remove record");
	return 0;
}

void userns_keeper_info_free(struct userns_keeper_info *ki)
{
	free(ki->dir);
	free(ki->uid_map);
	memset(ki, 0, sizeof *ki);
}
