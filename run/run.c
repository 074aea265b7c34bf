/* `run`, qimg's side: take the image's lease, join the user namespace, fork the container's PID 1 into a new pid
   namespace, forward signals to it (relay the terminal with -t) and return the command's exit status. */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOSTNAME_HEX       12

/* What the wait for PID 1 has seen so far. */
struct waitst {
	struct run_init *in;
	pid_t init;
	int master;     /* -t: the pty master, else -1 */
	bool have_exit; /* PID 1 reported the command's status */
	bool init_gone; /* PID 1 reaped */
	bool have_error;
	int status;
	struct run_msg error;
};


/* The -v sources: checked now for a clear error, made absolute (PID 1 works from the store directory). */
static int binds_check(const struct run_opts *o, struct strv *abs, struct qerr *err)
{
	char cwd[4096];
	bool have_cwd = getcwd(cwd, sizeof cwd) != NULL;
	for (size_t i = 0; i < o->nbinds; i++) {
		const struct run_bind *b = &o->binds[i];
		struct stat sb;
		if (stat(b->src, &sb) < 0)
			return qerr_sys(err, "-v %s:%s: %s", b->src, b->dst, b->src);
		if (b->src[0] != '/' && !have_cwd)
			return qerr_sys(err, "-v %s: getcwd", b->src);
		strv_push_take(abs, b->src[0] == '/' ? xstrdup(b->src) : xasprintf("%s/%s", cwd, b->src));
	}
	return 0;
}

/* --hostname, else the host's name with the host's network (docker), else a random id. */
static char *hostname_pick(const struct run_opts *o)
{
	if (o->hostname)
		return xstrdup(o->hostname);
	struct utsname u;
	if (!o->net_none && uname(&u) == 0)
		return xstrdup(u.nodename);
	char hex[HOSTNAME_HEX + 1];
	random_hex(hex, HOSTNAME_HEX);
	hex[HOSTNAME_HEX] = '\0';
	return xstrdup(hex);
}

static void signals_forwarded(sigset_t *fwd)
{
	static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
	sigemptyset(fwd);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(fwd, sigs[i]);
}

static int prepare(const struct run_opts *o, struct run_init *in, int locks[2], struct qerr *err)
{
	struct store *st = o->st;
	in->o = o;
	in->rootless = geteuid() != 0;
	in->store_root = st->root;
	in->msg_fd = in->alive_fd = in->tty_sock = -1;
	in->cdi_go[0] = in->cdi_go[1] = in->cdi_tree = -1;
	/* The command first: an image without one fails here, before any lock, namespace or mount. The holder has
	   none. */
	if (!o->holder && run_argv_build(o->spec, o->entrypoint, o->args, o->nargs, &in->argv, err) < 0)
		return -1;
	for (size_t i = 0; i < o->spec->layers.n; i++) {
		const char *id = o->spec->layers.v[i];
		if (!hex_exact(id, DIGEST_HEX_LEN)) /* layer ids become path components */
			return qerr_set(err, "image %s: corrupt run spec: layer id \"%.80s\"", o->spec->manifest_digest,
			                id);
		strv_push_take(&in->lowers, xasprintf("layers/%s", id));
	}
	if (run_kept_prepare(st, o, in, locks, err) < 0 || binds_check(o, &in->bind_srcs, err) < 0)
		return -1;
	in->hostname = hostname_pick(o);
	run_env_build(o->spec, o->env, in->hostname, o->tty, &in->env);
	struct stat self;
	if (stat("/proc/self/exe", &self) < 0)
		return qerr_sys(err, "stat /proc/self/exe");
	in->self_dev = self.st_dev;
	in->self_ino = self.st_ino;
	return o->cdi ? run_cdi_prepare(o, in, err) : 0;
}

/* ---- waiting for PID 1 ---- */

static void on_message(int fd, struct waitst *w, struct pollfd *pfd)
{
	struct run_msg m;
	ssize_t n;
	while ((n = read(fd, &m, sizeof m)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof m) {
		pfd->fd = -1; /* EOF: PID 1 is gone; its exit status tells the rest */
		return;
	}
	if (m.kind == RUN_MSG_ERROR) {
		w->have_error = true;
		w->error = m;
	} else if (m.kind == RUN_MSG_EXIT) {
		w->have_exit = true;
		w->status = m.status;
	} else if (m.kind == RUN_MSG_CDI) {
		run_cdi_message(w->in, w->init, &m);
	}
}

static void reap_init(struct waitst *w, int options)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(w->init, &st, options)) < 0 && errno == EINTR)
		;
	if (pid != w->init)
		return;
	w->init_gone = true;
	if (!w->have_exit)
		w->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void on_signal(int sigfd, struct waitst *w)
{
	struct signalfd_siginfo si;
	if (read(sigfd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (si.ssi_signo == SIGCHLD)
		reap_init(w, WNOHANG);
	else if (si.ssi_signo == SIGWINCH && w->master >= 0)
		run_tty_resize(w->master);
	else
		(void)kill(w->init, (int)si.ssi_signo);
}

/* Copy what is available from one fd to another; false at EOF or error (e.g. EIO once the pty's slave closes). */
static bool pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	return n > 0 && write_all(to, buf, (size_t)n) == 0;
}

static void drain_master(int master)
{
	int fl = fcntl(master, F_GETFL);
	if (fl >= 0 && fcntl(master, F_SETFL, fl | O_NONBLOCK) == 0) {
		char buf[16384];
		ssize_t n;
		while ((n = read(master, buf, sizeof buf)) > 0 && write_all(STDOUT_FILENO, buf, (size_t)n) == 0)
			;
	}
}

enum { P_MSG, P_SIG, P_IN, P_MASTER, P_N };

/* Until the command's status is known (and, unless early is allowed, PID 1 reaped). */
static void wait_loop(int msgfd, int sigfd, struct waitst *w, bool early)
{
	struct pollfd p[P_N] = {
	    [P_MSG] = {msgfd, POLLIN, 0},
	    [P_SIG] = {sigfd, POLLIN, 0},
	    [P_IN] = {w->master >= 0 ? STDIN_FILENO : -1, POLLIN, 0},
	    [P_MASTER] = {w->master, POLLIN, 0},
	};
	while (!w->init_gone) {
		if (w->have_exit && early && w->master < 0)
			return; /* the namespaces' teardown needs nobody waiting for it */
		if (p[P_MSG].fd < 0 && !w->init_gone) {
			reap_init(w, 0);
			break;
		}
		if (poll(p, P_N, -1) < 0) {
			if (errno == EINTR)
				continue;
			reap_init(w, 0);
			break;
		}
		if (p[P_MSG].revents)
			on_message(msgfd, w, &p[P_MSG]);
		if (p[P_SIG].revents)
			on_signal(sigfd, w);
		if (p[P_IN].revents && !pump(STDIN_FILENO, w->master))
			p[P_IN].fd = -1;
		if (p[P_MASTER].revents && !pump(w->master, STDOUT_FILENO))
			p[P_MASTER].fd = -1;
	}
	if (w->master >= 0)
		drain_master(w->master);
	/* A message sent just before PID 1 died may still sit in the pipe. */
	while (p[P_MSG].fd >= 0 && !w->have_exit) {
		struct pollfd q = {msgfd, POLLIN, 0};
		if (poll(&q, 1, 0) <= 0)
			break;
		on_message(msgfd, w, &p[P_MSG]);
	}
}

/* Forget signals that arrived for PID 1 but were not forwarded, then restore the caller's mask. */
static void signals_restore(const sigset_t *blocked, const sigset_t *old)
{
	struct timespec zero = {0, 0};
	while (sigtimedwait(blocked, NULL, &zero) > 0)
		;
	(void)sigprocmask(SIG_SETMASK, old, NULL);
}

/* ---- the run ---- */

struct fds {
	int msg[2], sock[2], sigfd, pidfd;
};

static int channels_open(const struct run_opts *o, struct fds *f, const sigset_t *blocked, struct qerr *err)
{
	if (pipe2(f->msg, O_CLOEXEC) < 0)
		return qerr_sys(err, "pipe");
	if (o->tty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sock) < 0)
		return qerr_sys(err, "socketpair");
	f->sigfd = signalfd(-1, blocked, SFD_CLOEXEC);
	if (f->sigfd < 0)
		return qerr_sys(err, "signalfd");
	f->pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0); /* optional: only closes a tiny race */
	return 0;
}

static void fds_close(struct fds *f)
{
	int *all[] = {&f->msg[0], &f->msg[1], &f->sock[0], &f->sock[1], &f->sigfd, &f->pidfd};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (*all[i] >= 0)
			close(*all[i]);
		*all[i] = -1;
	}
}

static void init_free(struct run_init *in, int locks[2])
{
	if (in->o && in->o->cdi)
		run_cdi_free(in);
	strv_free(&in->bind_srcs);
	strv_free(&in->lowers);
	strv_free(&in->argv);
	strv_free(&in->env);
	free(in->upper);
	free(in->work);
	free(in->hostname);
	for (int i = 0; i < 2; i++)
		if (locks[i] >= 0)
			close(locks[i]);
}

struct init_arg {
	struct run_init *in;
	struct fds *f;
	bool tty;
};

static int init_entry(void *arg)
{
	struct init_arg *a = arg;
	close(a->f->msg[0]);
	close(a->f->sigfd);
	if (a->tty)
		close(a->f->sock[0]);
	run_init_main(a->in);
}

#if defined(__SANITIZE_ADDRESS__) || defined(QIMG_NO_SHARED_VM)
#define SHARED_VM 0
#elif __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SHARED_VM (!RUNNING_ON_VALGRIND)
#else
#define SHARED_VM 1
#endif
#define INIT_STACK       (8u << 20)
#define INIT_STACK_GUARD (64u << 10) /* below the stack; wider than any one frame (-fstack-clash-protection probes) */

void *run_stack_alloc(size_t size, size_t guard)
{
	char *map = mmap(NULL, guard + size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map + guard, size, PROT_READ | PROT_WRITE) < 0) {
		int saved = errno;
		munmap(map, guard + size);
		errno = saved;
		return NULL;
	}
	return map + guard + size;
}

/* PID 1 shares our memory (CLONE_VM) instead of copying it: copying the page tables and faulting them back in
   costs ~0.7 ms per run here, more than all of PID 1's mount steps (bench/startup). It is safe because from the
   clone on we only wait - poll, read, waitpid, kill, one write to the run's record, no allocation - until PID 1
   reports the command's status,
   and after that PID 1 only calls _exit. Its stack is never unmapped while it runs: qimg exits, or (--keep,
   --from) reaps it first. AddressSanitizer and valgrind cannot follow a process sharing memory this way: there,
   a plain fork-style clone (raw, skipping glibc's atfork work; we are single-threaded). */
static pid_t init_clone(unsigned long flags, struct init_arg *a)
{
	if (SHARED_VM) {
		/* An overflow of PID 1's stack faults in the guard instead of writing over qimg's memory. */
		void *top = run_stack_alloc(INIT_STACK, INIT_STACK_GUARD);
		if (!top)
			return -1;
		return clone(init_entry, top, (int)(flags | CLONE_VM | SIGCHLD), a);
	}
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0)
		init_entry(a);
	return pid;
}

/* Every layer must have been unpacked for the map this run has: after the user's /etc/subuid range changed (or
   between the single-id and the full map) its files would show the wrong owners, and gc could not remove them. */
static int layers_idmap_check(const struct run_opts *o, const char *map, struct qerr *err)
{
	for (size_t i = 0; i < o->spec->layers.n; i++) {
		char have[USERNS_MAP_MAX];
		int rc = store_layer_idmap_check(o->st, o->spec->layers.v[i], map, have, sizeof have, err);
		if (rc < 0)
			return -1;
		if (rc == 0 && userns_map_single(have) != userns_map_single(map))
			return qerr_set(
			    err,
			    "layer %.12s was unpacked in the %s mode (\"%s\"), but this run is in the %s mode "
			    "(\"%s\"): `QIMG_USERNS=%s qimg pull %s` unpacks it again for this mode",
			    o->spec->layers.v[i], userns_map_single(have) ? "single-id" : "full-map", have,
			    userns_map_single(map) ? "single-id" : "full-map", map,
			    userns_map_single(map) ? "single" : "subuid", o->image ? o->image : "IMAGE");
		if (rc == 0)
			return qerr_set(
			    err,
			    "layer %.12s was unpacked for the id map \"%s\", but this run maps \"%s\" (your "
			    "/etc/subuid or /etc/subgid range changed?): `qimg pull %s` unpacks it again",
			    o->spec->layers.v[i], have, map, o->image ? o->image : "IMAGE");
	}
	return 0;
}

/* Join the user namespace the run's mode asks for (userns/mode.c: the keeper's full map, the single-id mode's, or
   none as root), and check the layers were unpacked for its map. */
static int join_userns(const struct run_opts *o, struct run_init *in, struct qerr *err)
{
	double t0 = qlog_level >= LOG_DEBUG ? now_mono() : 0;
	char map[USERNS_MAP_MAX];
	if (userns_join(map, err) < 0)
		return -1;
	if (t0 > 0)
		log_debug("run: joined the user namespace in %.1f us", (now_mono() - t0) * 1e6);
	if (layers_idmap_check(o, map, err) < 0)
		return -1;
	in->single_id = userns_map_single(map);
	userns_notice(o->st, map);
	return 0;
}

/* Clone PID 1 into its new namespaces (it makes the mounts itself: run/init.c) and wait for the command. */
static int spawn_and_wait(const struct run_opts *o, struct run_init *in, struct fds *f, struct waitst *w,
                          struct qerr *err)
{
	double t0 = qlog_level >= LOG_DEBUG ? now_mono() : 0;
	in->msg_fd = f->msg[1];
	in->alive_fd = f->pidfd;
	in->tty_sock = o->tty ? f->sock[1] : -1;
	/* PID 1 is cloned straight into its new namespaces; qimg stays in ours (after unshare(CLONE_NEWPID) anything
	   qimg forked later - a sanitizer's helper - would land in the container's dying pid namespace). */
	unsigned long flags = (o->holder ? 0 : CLONE_NEWPID) | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
	                      (o->net_none ? CLONE_NEWNET : 0);
	struct init_arg ia = {in, f, o->tty};
	w->init = init_clone(flags, &ia);
	if (w->init < 0)
		return qerr_sys(err, "clone the container's PID 1 (new pid, mount, ipc, uts%s namespaces)",
		                o->net_none ? ", net" : "");
	close(f->msg[1]);
	f->msg[1] = -1;
	if (o->cdi)
		run_cdi_cloned(in);
	run_record_started(o->record_fd, w->init);
	if (o->tty) {
		close(f->sock[1]);
		f->sock[1] = -1;
		w->master = run_tty_recv(f->sock[0]);
	}
	struct termios saved;
	bool raw = w->master >= 0 && run_tty_raw(&saved);
	wait_loop(f->msg[0], f->sigfd, w, !o->keep && !o->from);
	if (t0 > 0)
		log_debug("run: the container ran for %.1f us after the fork", (now_mono() - t0) * 1e6);
	if (raw)
		run_tty_restore(&saved);
	if (w->master >= 0)
		close(w->master);
	if (o->cdi)
		run_cdi_stopped(in, w->init);
	return 0;
}

int run_container(const struct run_opts *o, struct qerr *err)
{
	if (o->tty && !isatty(STDIN_FILENO))
		return qerr_set(err, "the input device is not a TTY");
	struct run_init in = {0};
	int locks[2] = {-1, -1};
	struct fds f = {{-1, -1}, {-1, -1}, -1, -1};
	struct waitst w = {.in = &in, .master = -1};
	if (prepare(o, &in, locks, err) < 0) {
		init_free(&in, locks);
		return -1;
	}
	signals_forwarded(&in.fwd);
	sigset_t blocked = in.fwd;
	sigaddset(&blocked, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &blocked, &in.oldmask) < 0) {
		init_free(&in, locks);
		return qerr_sys(err, "block signals");
	}
	/* The plan (prepare: image, command, layers, kept dirs, binds, devices) is complete; now execute it. */
	int rc = join_userns(o, &in, err) < 0 || channels_open(o, &f, &blocked, err) < 0 ||
	                 spawn_and_wait(o, &in, &f, &w, err) < 0
	             ? -1
	             : 0;
	fds_close(&f);
	init_free(&in, locks);
	signals_restore(&blocked, &in.oldmask);
	if (rc < 0)
		return -1;
	if (w.have_error) {
		qerr_set(err, "%s", w.error.text);
		err->exit_status = w.error.status;
		return -1;
	}
	return w.status;
}
