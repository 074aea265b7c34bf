/* sysprobe PROBE...: make each named syscall in a child of its own and print "PROBE RESULT" (ok, an errno name,
   or "signal N"): the e2e test of the container's seccomp filter (tests/e2e/security_seccomp.sh). Static, so
   it runs in any image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define X32_BIT      0x40000000L
#define NR_FCHMODAT2 452 /* Linux 6.6, in the profile */
#define NR_MSEAL     462 /* Linux 6.10: newer than the profile's table */

static long r(long rc)
{
	return rc < 0 ? -errno : rc;
}

static void *thread_fn(void *arg)
{
	return arg;
}

static long p_threads(void)
{
	static int token;
	pthread_t t;
	void *out = NULL;
	int e = pthread_create(&t, NULL, thread_fn, &token);
	if (e)
		return -e;
	e = pthread_join(t, &out);
	return e ? -e : (out == &token ? 0 : -EIO);
}

static long p_fork_exec(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static long p_clone_newns(void)
{
	long rc = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t)rc, NULL, 0);
	return r(rc);
}

#if defined(__x86_64__)
/* getpid through the i386 entry point (arch AUDIT_ARCH_I386 in seccomp_data). */
static long p_i386(void)
{
	long ret = 20; /* __NR_getpid on i386 */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
	return ret;
}
#endif

static long probe(const char *name)
{
	if (!strcmp(name, "getpid"))
		return r(syscall(SYS_getpid));
	if (!strcmp(name, "keyctl"))
		return r(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1));
	if (!strcmp(name, "add_key"))
		return r(syscall(SYS_add_key, "user", "qimg-sysprobe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
	if (!strcmp(name, "request_key"))
		return r(syscall(SYS_request_key, "user", "qimg-sysprobe-none", NULL, 0));
	if (!strcmp(name, "kexec_load"))
		return r(syscall(SYS_kexec_load, 0, 0, NULL, 0));
	if (!strcmp(name, "kexec_file_load"))
		return r(syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0));
	if (!strcmp(name, "open_by_handle_at"))
		return r(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, O_RDONLY));
	if (!strcmp(name, "bpf")) /* an unknown command: EINVAL from the kernel, EPERM from the filter */
		return r(syscall(SYS_bpf, 9999, NULL, 0));
	if (!strcmp(name, "perf_event_open")) /* no attr: EFAULT from the kernel */
		return r(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
	if (!strcmp(name, "userfaultfd"))
		return r(syscall(SYS_userfaultfd, O_CLOEXEC));
	if (!strcmp(name, "unshare_user"))
		return r(unshare(CLONE_NEWUSER));
	if (!strcmp(name, "clone_newns"))
		return p_clone_newns();
	if (!strcmp(name, "clone3")) /* no args: EINVAL from the kernel */
		return r(syscall(SYS_clone3, NULL, 0));
	if (!strcmp(name, "mount")) /* a file system type that does not exist: ENODEV where the call is allowed */
		return r(mount("none", "/", "qimg-sysprobe-nofs", MS_RDONLY, NULL));
	if (!strcmp(name, "personality_query"))
		return r(personality(0xffffffff)) < 0 ? -EINVAL : 0;
	if (!strcmp(name, "personality_norandom"))
		return r(personality(PER_LINUX | ADDR_NO_RANDOMIZE));
	if (!strcmp(name, "vsock"))
		return r(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!strcmp(name, "unix_socket"))
		return r(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!strcmp(name, "io_uring_setup")) {
		unsigned char params[120] = {0}; /* struct io_uring_params */
		return r(syscall(SYS_io_uring_setup, 4, params));
	}
	if (!strcmp(name, "mseal")) /* unknown flags: EINVAL from the kernel */
		return r(syscall(NR_MSEAL, 0, 0, ~0UL));
	if (!strcmp(name, "fchmodat2"))
		return r(syscall(NR_FCHMODAT2, AT_FDCWD, "/nonexistent-sysprobe", 0644, 0));
	if (!strcmp(name, "threads"))
		return p_threads();
	if (!strcmp(name, "fork_exec"))
		return p_fork_exec();
#if defined(__x86_64__)
	if (!strcmp(name, "x32_getpid"))
		return r(syscall(X32_BIT | SYS_getpid));
	if (!strcmp(name, "i386_getpid"))
		return p_i386();
#endif
	return -ENOTSUP;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int pfd[2];
		if (pipe(pfd) < 0)
			return 1;
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			long rc = probe(argv[i]);
			char out[64];
			int n = snprintf(out, sizeof out, "%s", rc >= 0 ? "ok" : strerrorname_np((int)-rc));
			(void)!write(pfd[1], out, (size_t)n);
			_exit(0);
		}
		close(pfd[1]);
		char res[64] = "";
		ssize_t n = read(pfd[0], res, sizeof res - 1);
		res[n > 0 ? n : 0] = '\0';
		close(pfd[0]);
		int st;
		waitpid(pid, &st, 0);
		if (WIFSIGNALED(st))
			snprintf(res, sizeof res, "signal %d", WTERMSIG(st));
		printf("%s %s\n", argv[i], res);
	}
	return 0;
}
