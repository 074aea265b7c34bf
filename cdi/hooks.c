/* Running the OCI hooks of one stage: the state JSON on stdin, the hook's own environment, its timeout. Nothing
   here allocates: qimg runs poststart hooks while PID 1 shares its memory (run/run.c). */
#include "cdi.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Append s as a JSON string to buf at *at (no allocation); false when it does not fit. */
static bool json_put(char *buf, size_t size, size_t *at, const char *s)
{
	char tmp[8];
	if (*at + 1 >= size)
		return false;
	buf[(*at)++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		int n;
		if (*c == '"' || *c == '\\')
			n = snprintf(tmp, sizeof tmp, "\\%c", *c);
		else if (*c < 0x20)
			n = snprintf(tmp, sizeof tmp, "\\u%04x", *c);
		else
			n = snprintf(tmp, sizeof tmp, "%c", *c);
		if (*at + (size_t)n + 1 >= size)
			return false;
		memcpy(buf + *at, tmp, (size_t)n);
		*at += (size_t)n;
	}
	buf[(*at)++] = '"';
	buf[*at] = '\0';
	return true;
}

static bool raw_put(char *buf, size_t size, size_t *at, const char *s)
{
	size_t n = strlen(s);
	if (*at + n + 1 >= size)
		return false;
	memcpy(buf + *at, s, n + 1);
	*at += n;
	return true;
}

int cdi_state_json(char *buf, size_t size, const char *id, const char *status, pid_t pid, const char *bundle)
{
	size_t at = 0;
	char pidbuf[48];
	snprintf(pidbuf, sizeof pidbuf, ",\"pid\":%d,\"bundle\":", (int)pid);
	bool ok = raw_put(buf, size, &at, "{\"ociVersion\":\"1.0.2\",\"id\":") && json_put(buf, size, &at, id) &&
	          raw_put(buf, size, &at, ",\"status\":") && json_put(buf, size, &at, status) &&
	          raw_put(buf, size, &at, pidbuf) && json_put(buf, size, &at, bundle) &&
	          raw_put(buf, size, &at, ",\"annotations\":{}}");
	if (!ok) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static __attribute__((noreturn)) void hook_child(const struct cdi_hook *h, int in)
{
	static char *const no_env[] = {NULL};
	char *argv0[] = {h->path, NULL};
	sigset_t none;
	sigemptyset(&none);
	if (dup2(in, STDIN_FILENO) < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		_exit(126);
	execve(h->path, h->args.n ? h->args.v : argv0, h->env.n ? h->env.v : no_env);
	fprintf(stderr, "qimg: %s hook %s: exec: %s\n", cdi_stage_name(h->stage), h->path, strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

#define POLL_NS (10 * 1000 * 1000)

/* Without pidfds (kernels before 5.3): poll the child every 10 ms until the deadline. 1 when it timed out. */
static int hook_wait_slow(pid_t pid, int timeout, int *status)
{
	struct timespec t0, now, nap = {0, POLL_NS};
	if (clock_gettime(CLOCK_MONOTONIC, &t0) < 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return r == pid ? 2 : -1;
		if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
			return -1;
		if (now.tv_sec - t0.tv_sec >= timeout)
			return 1;
		(void)nanosleep(&nap, NULL); /* EINTR: look again sooner */
	}
}

/* Wait for pid, at most timeout seconds (0 = no limit): 0 and *status, or 1 when it was killed for the timeout. */
static int hook_wait(pid_t pid, int timeout, int *status)
{
	int killed = 0;
	int pfd = timeout > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (timeout > 0 && pfd < 0) {
		int r = hook_wait_slow(pid, timeout, status);
		if (r == 2 || r < 0)
			return r < 0 ? -1 : 0;
		(void)kill(pid, SIGKILL);
		killed = 1;
	}
	if (pfd >= 0) {
		struct pollfd p = {pfd, POLLIN, 0};
		int r;
		while ((r = poll(&p, 1, timeout * 1000)) < 0 && errno == EINTR)
			;
		if (r == 0) {
			(void)kill(pid, SIGKILL);
			killed = 1;
		}
		close(pfd);
	}
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return killed;
}

static int hook_run(const struct cdi_hook *h, const char *state, struct qerr *err)
{
	const char *stage = cdi_stage_name(h->stage);
	int sv[2];
	/* A socket, not a pipe: send(MSG_NOSIGNAL) to a hook that never reads cannot kill us with SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return qerr_sys(err, "%s hook %s: socketpair", stage, h->path);
	/* A raw clone, not fork(): startContainer hooks are started from the command's vfork child, where libc's
	   fork bookkeeping would write into memory it shares with PID 1 and qimg. The child only execs. */
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return qerr_sys(err, "%s hook %s: fork", stage, h->path);
	}
	if (pid == 0)
		hook_child(h, sv[1]);
	close(sv[1]);
	size_t len = strlen(state), off = 0;
	while (off < len) {
		ssize_t n = send(sv[0], state + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the hook does not read its state: its exit status tells */
		off += (size_t)n;
	}
	(void)shutdown(sv[0], SHUT_WR);
	int st = 0, w = hook_wait(pid, h->timeout, &st);
	close(sv[0]);
	if (w < 0)
		return qerr_sys(err, "%s hook %s: wait", stage, h->path);
	if (w == 1)
		return qerr_set(err, "%s hook %s: timed out after %d s (killed)", stage, h->path, h->timeout);
	if (WIFSIGNALED(st))
		return qerr_set(err, "%s hook %s: killed by signal %d", stage, h->path, WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		return qerr_set(err, "%s hook %s: exit status %d", stage, h->path, WEXITSTATUS(st));
	return 0;
}

int cdi_hooks_run(const struct cdi_plan *p, enum cdi_stage s, const char *state, bool keep_going, struct qerr *err)
{
	int rc = 0;
	for (size_t i = 0; p && i < p->nhooks; i++) {
		if (p->hooks[i].stage != s)
			continue;
		if (hook_run(&p->hooks[i], state, err) < 0) {
			if (!keep_going)
				return -1;
			log_warn("%s", err->msg);
			rc = -1;
		}
	}
	return rc;
}
