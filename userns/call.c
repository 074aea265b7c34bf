/* userns_call(): fork, join the user namespace, call, bring the error back - the one copy of what export, the
   unpacker's clean-up of killed workers and other store work inside the namespace need. */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int userns_call(bool rootless, const char *what, int (*fn)(void *arg, struct qerr *err), void *arg,
                struct qerr *err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return qerr_sys(err, "%s: pipe", what);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return qerr_sys(err, "%s: fork", what);
	}
	if (pid == 0) {
		struct qerr e = {0};
		close(pfd[0]);
		int rc = rootless ? userns_enter(&e) : 0;
		if (rc < 0)
			qerr_wrap(&e, "%s: enter the user namespace: ", what);
		/* Die with the caller (set after the namespace switch, which clears it). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		if (rc == 0)
			rc = fn(arg, &e);
		if (rc < 0) {
			const char *m = e.msg[0] ? e.msg : "failed without a message";
			(void)write_all(pfd[1], m, strlen(m));
		}
		_exit(rc < 0 ? 1 : 0);
	}
	close(pfd[1]);
	struct buf msg = {0};
	char chunk[1024];
	for (;;) {
		ssize_t n = read(pfd[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_append(&msg, chunk, (size_t)n);
	}
	close(pfd[0]);
	buf_append(&msg, "", 1);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			buf_free(&msg);
			return qerr_sys(err, "%s: wait for the child", what);
		}
	int rc = 0;
	if (msg.p[0])
		rc = qerr_set(err, "%s", msg.p);
	else if (WIFSIGNALED(status))
		rc = qerr_set(err, "%s: child killed by signal %d", what, WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = qerr_set(err, "%s: child exited with status %d", what, WEXITSTATUS(status));
	buf_free(&msg);
	return rc;
}
