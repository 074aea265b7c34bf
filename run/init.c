/* PID 1 of the container: the setup steps in order, then fork the command, reap every zombie, forward signals and
   exit with the command's status. Also the command's side between fork and exec. */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/mountapi.h"
#include "../cdi/cdi.h"
#include "seccomp.h"

/* What the command is started with: argv and env from qimg (run_init), the rest worked out by PID 1 after
   pivot_root. */
struct plan {
	struct strv argv, env;
	struct run_user user;
	char *workdir;
	uint64_t caps, ambient;
	int slave;      /* -t: the pty slave; else -1 */
	int filter_len; /* the seccomp program's length; 0: --security-opt seccomp=unconfined */
	struct sock_filter filter[RUN_SECCOMP_INSNS_MAX];
};

/* PID 1's state through the steps. */
struct state {
	struct rootfs r;
	struct plan p;
};

static void send_msg(int fd, int kind, int status, const char *text)
{
	struct run_msg m = {.kind = kind, .status = status};
	snprintf(m.text, sizeof m.text, "%s", text ? text : "");
	(void)!write(fd, &m, sizeof m);
}

static __attribute__((noreturn)) void init_fail(struct run_init *in, const struct qerr *err)
{
	send_msg(in->msg_fd, RUN_MSG_ERROR, err->exit_status ? err->exit_status : EXIT_RUN_QIMG, err->msg);
	_exit(err->exit_status ? err->exit_status : EXIT_RUN_QIMG);
}

/* ---- PID 1's steps (DESIGN.md §5) ---- */

/* No controlling terminal for anything in the container: TIOCSTI on it would type into the user's shell
   (CVE-2017-5226). TIOCNOTTY instead of setsid(): a new session costs ~2 ms here (a new scheduler autogroup).
   And a process group of our own, so ^C at the terminal reaches qimg only, which forwards it once. */
static void drop_ctty(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		(void)ioctl(fd, TIOCNOTTY);
		close(fd);
	}
	(void)setpgid(0, 0);
}

/* qimg may have been killed between fork and PR_SET_PDEATHSIG: its pidfd is readable once it is gone. */
static int step_parent_watch(struct run_init *in, struct state *st, struct qerr *err)
{
	(void)st;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return qerr_sys(err, "prctl(PR_SET_PDEATHSIG)");
	struct pollfd p = {in->alive_fd, POLLIN, 0};
	if (in->alive_fd >= 0 && poll(&p, 1, 0) > 0)
		_exit(EXIT_RUN_QIMG);
	/* Nothing in the container may ptrace us or open our fds through /proc/1. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return qerr_sys(err, "prctl(PR_SET_DUMPABLE)");
	umask(022);
	drop_ctty();
	return 0;
}

static int step_hostname(struct run_init *in, struct state *st, struct qerr *err)
{
	(void)st;
	if (sethostname(in->hostname, strlen(in->hostname)) < 0)
		return qerr_sys(err, "sethostname %s", in->hostname);
	return 0;
}

/* --net none: a fresh network namespace with only lo, brought up. */
static int step_loopback(struct run_init *in, struct state *st, struct qerr *err)
{
	(void)st;
	if (!in->o->net_none)
		return 0;
	autoclose int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return qerr_sys(err, "lo: get flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return qerr_sys(err, "lo: bring up");
	return 0;
}

static int plan_user(struct run_init *in, struct plan *p, struct qerr *err)
{
	const char *spec = in->o->user ? in->o->user : in->o->spec->user;
	struct qerr ignore;
	autofree char *passwd = rootfs_read("/etc/passwd", &ignore);
	autofree char *group = rootfs_read("/etc/group", &ignore);
	if (run_user_resolve(spec, passwd, group, &p->user, err) < 0)
		return -1;
	run_env_default(&p->env, "HOME", p->user.home);
	p->caps = run_caps_effective_set(in->o->cap_add, in->o->cap_drop) & run_caps_known();
	/* A non-root user gets capabilities only when asked by name (--cap-add), as ambient ones. */
	p->ambient = p->user.uid != 0 && in->o->cap_add ? (in->o->cap_add & p->caps) : 0;
	return 0;
}

static int plan_workdir(struct run_init *in, struct plan *p, struct qerr *err)
{
	const char *w = in->o->workdir ? in->o->workdir : in->o->spec->workdir;
	if (!w || !*w)
		w = "/";
	p->workdir = *w == '/' ? xstrdup(w) : xasprintf("/%s", w);
	/* Like docker, a missing working directory is created. */
	if (rootfs_mkdir_p(p->workdir, err) < 0)
		return qerr_wrap(err, "working directory %s: ", p->workdir);
	return 0;
}

/* After pivot_root: who the command runs as (the image's /etc/passwd and /etc/group decide) and where. The
   command and its environment were built by qimg before any namespace (run.c prepare); PID 1 copies the
   environment (qimg frees the original: we share its memory) and adds what depends on the user and the devices. */
static int step_user(struct run_init *in, struct state *st, struct qerr *err)
{
	struct plan *p = &st->p;
	p->argv = in->argv;
	for (size_t i = 0; i < in->env.n; i++)
		strv_push(&p->env, in->env.v[i]);
	if (plan_user(in, p, err) < 0)
		return -1;
	if (in->o->cdi)
		run_cdi_plan(in, &p->env, &p->user);
	return plan_workdir(in, p, err);
}

static int step_tty(struct run_init *in, struct state *st, struct qerr *err)
{
	struct plan *p = &st->p;
	p->slave = in->o->tty ? run_tty_open(in, err) : -1;
	return in->o->tty && p->slave < 0 ? -1 : 0;
}

/* The syscall filter for the command's capabilities (docker's default profile), built here so that the command's
   side only loads it. */
static int step_seccomp(struct run_init *in, struct state *st, struct qerr *err)
{
	struct plan *p = &st->p;
	const struct run_seccomp_profile *prof = &run_seccomp_default;
	if (in->single_id) /* the root emulation, even unconfined: without it package managers fail */
		prof = in->o->seccomp_unconfined ? &run_seccomp_single_only : &run_seccomp_single;
	else if (in->o->seccomp_unconfined)
		return 0;
	p->filter_len = run_seccomp_build(prof, p->caps, p->filter);
	if (p->filter_len <= 0)
		return qerr_set(err, "the %s profile does not fit the filter builder", prof->name);
	return 0;
}

/* --device/--gpus (run/cdi_apply.c): nothing without a CDI plan. */
static int step_cdi_bundle(struct run_init *in, struct state *st, struct qerr *err)
{
	(void)st;
	return in->o->cdi ? run_cdi_bundle_grab(in, err) : 0;
}

static int step_cdi(struct run_init *in, struct state *st, struct qerr *err)
{
	return in->o->cdi ? run_cdi_edits(in, &st->r, err) : 0;
}

/* A step is either a filesystem step (run/rootfs.c, on the rootfs state) or one of PID 1's own (on the whole
   state). */
struct step {
	const char *name;
	int (*fs)(struct run_init *in, struct rootfs *r, struct qerr *err);
	int (*fn)(struct run_init *in, struct state *st, struct qerr *err);
};

/* The order of DESIGN.md §5, in one place. The namespaces (pid, mount, ipc, uts, net) come with the clone that
   made us (run/run.c), which qimg does after joining the user namespace. */
static const struct step steps[] = {
    {"watch qimg", NULL, step_parent_watch},
    {"private /", rootfs_private, NULL},
    {"cdi bundle", NULL, step_cdi_bundle},
    {"run tmpfs", rootfs_tmpfs, NULL},
    {"stub layer", rootfs_stub, NULL},
    {"overlay", rootfs_overlay, NULL},
    {"/proc", rootfs_proc, NULL},
    {"/dev", rootfs_dev, NULL},
    {"/sys", rootfs_sys, NULL},
    {"/etc binds", rootfs_etc_binds, NULL},
    {"-v binds", rootfs_binds, NULL},
    {"devices", NULL, step_cdi},
    {"hostname", NULL, step_hostname},
    {"loopback", NULL, step_loopback},
    {"pivot_root", rootfs_pivot, NULL},
    {"user", NULL, step_user},
    {"read-only", rootfs_readonly, NULL},
    {"tty", NULL, step_tty},
    {"seccomp", NULL, step_seccomp},
};

static int setup(struct run_init *in, struct state *st, struct qerr *err)
{
	enum { NSTEPS = sizeof steps / sizeof steps[0] };
	bool timed = qlog_level >= LOG_DEBUG;
	double t[NSTEPS + 1] = {timed ? now_mono() : 0};
	for (size_t i = 0; i < NSTEPS; i++) {
		if ((steps[i].fs ? steps[i].fs(in, &st->r, err) : steps[i].fn(in, st, err)) < 0)
			return qerr_wrap(err, "%s: ", steps[i].name);
		if (timed)
			t[i + 1] = now_mono();
	}
	/* Printed after the last step, so that writing them is not counted in any. */
	for (size_t i = 0; timed && i < NSTEPS; i++)
		log_debug("run: step %-11s %7.1f us", steps[i].name, (t[i + 1] - t[i]) * 1e6);
	return 0;
}

/* ---- the command's side: between fork and exec ---- */

static __attribute__((noreturn, format(printf, 3, 4))) void cmd_fail_exit(struct run_init *in, int status,
                                                                          const char *fmt, ...)
{
	char text[sizeof((struct run_msg *)0)->text];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	send_msg(in->msg_fd, RUN_MSG_ERROR, status, text);
	_exit(status);
}

static void setup_stdio(struct run_init *in, struct plan *p)
{
	if (p->slave >= 0) {
		/* The pty becomes the controlling terminal of a session of its own. */
		if (setsid() < 0 || ioctl(p->slave, TIOCSCTTY, 0) < 0 || dup2(p->slave, 0) < 0 ||
		    dup2(p->slave, 1) < 0 || dup2(p->slave, 2) < 0)
			cmd_fail_exit(in, EXIT_RUN_QIMG, "attach the terminal: %s", strerror(errno));
		close(p->slave);
	} else if (!in->o->interactive) {
		/* Without -i the command reads no input (docker). */
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 0) < 0)
			cmd_fail_exit(in, EXIT_RUN_QIMG, "open /dev/null: %s", strerror(errno));
		close(fd);
	}
}

static void drop_privileges(struct run_init *in, struct plan *p)
{
	const struct run_user *u = &p->user;
	int bad = -1;
	/* Single-id mode: 0 is the only id (setgroups is denied in such a namespace): -u's ids are emulated like the
	   command's own set*id calls, the command runs as 0 with the capabilities it would have as root. */
	uid_t uid = in->single_id ? 0 : u->uid;
	if (run_caps_bound(p->caps, &bad) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "drop CAP_%s from the bounding set: %s", run_cap_name(bad),
		              strerror(errno));
	if (!in->single_id && (setgroups(u->ngroups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0))
		cmd_fail_exit(in, EXIT_RUN_QIMG, "set groups of uid %u (gid %u): %s", u->uid, u->gid, strerror(errno));
	if (p->ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "keep capabilities: %s", strerror(errno));
	if (setresuid(uid, uid, uid) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "set uid %u: %s", uid, strerror(errno));
	uint64_t keep = uid == 0 ? p->caps : p->ambient;
	if ((uid == 0 || p->ambient) && run_caps_set(keep, p->ambient) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "set capabilities: %s", strerror(errno));
	if (p->ambient && run_caps_ambient(p->ambient) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "raise ambient capabilities: %s", strerror(errno));
	if (in->o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "set no_new_privs: %s", strerror(errno));
}

static __attribute__((noreturn)) void exec_fail(struct run_init *in, const char *cmd, int e, bool searched)
{
	if (e == ENOENT && searched)
		cmd_fail_exit(in, EXIT_RUN_NOTFOUND, "exec: \"%s\": executable file not found in $PATH", cmd);
	if (e == ENOENT || e == ENOTDIR)
		cmd_fail_exit(in, EXIT_RUN_NOTFOUND, "exec: \"%s\": stat %s: %s", cmd, cmd, strerror(e));
	cmd_fail_exit(in, EXIT_RUN_NOEXEC, "exec: \"%s\": %s", cmd, strerror(e));
}

#define INTERP_DEPTH 5 /* the kernel follows at most 4 nested #! interpreters */

/* 1 if path, followed inside the container, is qimg's own binary or a script whose #! chain reaches it. */
static int exec_guard_depth(struct run_init *in, const char *path, int depth)
{
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = open(path, O_PATH | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0)
		return 0; /* execve reports it */
	if (sb.st_dev == in->self_dev && sb.st_ino == in->self_ino)
		return 1;
	char line[256];
	ssize_t n = S_ISREG(sb.st_mode) && depth < INTERP_DEPTH ? pread(fd, line, sizeof line - 1, 0) : -1;
	if (n < 3 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	char *interp = line + 2;
	interp += strspn(interp, " \t");
	interp[strcspn(interp, " \t\n")] = '\0';
	return *interp && exec_guard_depth(in, interp, depth + 1);
}

/* Until it execs, the command's /proc/self/exe is qimg's own binary on the host: `--entrypoint /proc/self/exe`,
   a symlink to it or a "#!/proc/self/exe" script would run it inside the container, and a process holding it
   could write to it once it is no longer running (CVE-2019-5736). Refused, 126. (A concurrent swap of a symlink
   between this check and execve needs a second writer to the container's files, e.g. through a shared -v.) */
static void exec_guard(struct run_init *in, const char *cmd, const char *path)
{
	if (exec_guard_depth(in, path, 0))
		cmd_fail_exit(in, EXIT_RUN_NOEXEC, "exec: \"%s\": refusing to run qimg's own binary in the container",
		              cmd);
}

/* execvp with the container's PATH (not ours), telling "not found" (127) from "cannot execute" (126). */
static __attribute__((noreturn)) void exec_search(struct run_init *in, struct plan *p)
{
	char **argv = p->argv.v, **envp = p->env.v;
	const char *cmd = argv[0];
	if (strchr(cmd, '/')) {
		exec_guard(in, cmd, cmd);
		execve(cmd, argv, envp);
		exec_fail(in, cmd, errno, false);
	}
	const char *path = run_env_get(&p->env, "PATH");
	if (!path)
		path = RUN_DEFAULT_PATH;
	int seen = ENOENT;
	char full[PATH_MAX];
	for (const char *d = path;; d++) {
		size_t dl = strcspn(d, ":");
		if (snprintf(full, sizeof full, "%.*s/%s", (int)(dl ? dl : 1), dl ? d : ".", cmd) < (int)sizeof full) {
			exec_guard(in, cmd, full);
			execve(full, argv, envp);
			if (errno == EACCES)
				seen = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
				exec_fail(in, cmd, errno, true);
		}
		d += dl;
		if (!*d)
			break;
	}
	exec_fail(in, cmd, seen, true);
}

static void seccomp_load(struct run_init *in, struct plan *p)
{
	if (p->filter_len > 0 && run_seccomp_install(p->filter, p->filter_len) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG,
		              "install the seccomp filter: %s (--security-opt seccomp=unconfined runs without it)",
		              strerror(errno));
}

static __attribute__((noreturn)) void command_main(struct run_init *in, struct plan *p)
{
	if (sigprocmask(SIG_SETMASK, &in->oldmask, NULL) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "restore the signal mask: %s", strerror(errno));
	setup_stdio(in, p);
	if (chdir(p->workdir) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "chdir to the working directory %s: %s", p->workdir, strerror(errno));
	/* The filter goes on first, while we still hold CAP_SYS_ADMIN in our user namespace (root: all
	   capabilities; rootless: those of the namespace's root), so the kernel takes it without no_new_privs, which
	   would break setuid programs in the container; every call from here to execve is one the profile allows.
	   Single-id mode: after the drop instead, since the filter makes capset a no-op; the kernel then wants
	   no_new_privs, which costs nothing there (no other id to gain; file capabilities do not apply). */
	if (!in->single_id)
		seccomp_load(in, p);
	drop_privileges(in, p);
	if (in->single_id)
		seccomp_load(in, p);
	/* OCI startContainer hooks: in the container, with the command's user and capabilities (as runc). */
	struct qerr herr;
	if (in->o->cdi && run_cdi_start(in, &herr) < 0)
		cmd_fail_exit(in, EXIT_RUN_QIMG, "%s", herr.msg);
	/* Backstop: whatever fd anyone forgot to mark, none reaches the command. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	exec_search(in, p);
}

/* ---- PID 1 after the fork ---- */

static int wait_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Reap every child; forward signals to the command; return its status once it is gone. */
static int reap_loop(struct run_init *in, pid_t cmd)
{
	sigset_t set = in->fwd;
	sigaddset(&set, SIGCHLD);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			(void)kill(cmd, sig);
			continue;
		}
		int st, status = -1;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			if (pid == cmd)
				status = wait_status(st);
		if (status >= 0)
			return status;
	}
}

/* Keep only the message pipe: nothing of qimg's stays open in the container's PID 1. */
static void close_all_but(int keep)
{
	if (keep > 0)
		(void)close_range(0, (unsigned)keep - 1, 0);
	(void)close_range((unsigned)keep + 1, ~0U, 0);
}

void run_init_main(struct run_init *in)
{
	struct qerr err = {0};
	struct state st = {.r = {-1, -1}, .p = {.slave = -1}};
	struct plan *p = &st.p;
	if (setup(in, &st, &err) < 0)
		init_fail(in, &err);
	if (in->o->holder)
		run_holder_main(in);
	/* vfork: no page-table copy; the child only makes syscalls, writes its own stack and ends in exec or
	   _exit (command_main), while we wait. */
	pid_t cmd = vfork();
	if (cmd < 0) {
		qerr_sys(&err, "fork the command");
		init_fail(in, &err);
	}
	if (cmd == 0)
		command_main(in, p);
	if (cdi_plan_has_stage(in->o->cdi, CDI_POSTSTART))
		send_msg(in->msg_fd, RUN_MSG_CDI, CDI_POSTSTART, NULL);
	close_all_but(in->msg_fd);
	int status = reap_loop(in, cmd);
	send_msg(in->msg_fd, RUN_MSG_EXIT, status, NULL);
	_exit(status);
}
