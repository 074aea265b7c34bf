/* Unit tests: the seccomp builder (run/seccomp.c). Each program is loaded by the kernel in a child, which then
   makes the calls: what the kernel's filter answers is what counts, not how the program looks. */
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/personality.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "../../run/seccomp.h"
#include "t.h"

#define CAPB(c) ((uint64_t)1 << (c))

/* In a child: load profile p built for caps, make the call, report its errno (0 = success). */
static int errno_in(const struct run_seccomp_profile *p, uint64_t caps, long (*call)(void))
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter prog[RUN_SECCOMP_INSNS_MAX];
		int len = run_seccomp_build(p, caps, prog);
		int e = -1;
		if (len > 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && run_seccomp_install(prog, len) == 0)
			e = call() < 0 ? errno : 0;
		(void)!write(pfd[1], &e, sizeof e);
		_exit(0);
	}
	close(pfd[1]);
	int e = -2;
	if (read(pfd[0], &e, sizeof e) != sizeof e)
		e = -2;
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	return e;
}

static int errno_under(uint64_t caps, long (*call)(void))
{
	return errno_in(&run_seccomp_default, caps, call);
}

static long c_getpid(void)
{
	return syscall(SYS_getpid);
}
static long c_keyctl(void)
{
	return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
}
static long c_bpf(void)
{
	return syscall(SYS_bpf, 9999, NULL, 0);
}
static long c_clone3(void)
{
	return syscall(SYS_clone3, NULL, 0);
}
static long c_pers_query(void)
{
	return personality(0xffffffff);
}
static long c_pers_norandom(void)
{
	return personality(PER_LINUX | ADDR_NO_RANDOMIZE);
}
static long c_vsock(void)
{
	return socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
}
static long c_unix(void)
{
	long fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0)
		close((int)fd);
	return fd;
}
static long c_newer(void)
{
	return syscall(462 /* mseal, newer than the table */, 0, 0, ~0UL);
}
static long c_fchmodat2(void)
{
	return syscall(452, -100, "/nonexistent-test-seccomp", 0644, 0);
}
static long c_io_uring(void)
{
	unsigned char params[120] = {0};
	long fd = syscall(SYS_io_uring_setup, 4, params);
	if (fd >= 0)
		close((int)fd);
	return fd;
}
static long c_x32(void)
{
	return syscall(0x40000000L | SYS_getpid);
}
static long c_unshare_user(void)
{
	return unshare(CLONE_NEWUSER);
}
static long c_clone_plain(void)
{
	long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}
static long c_clone_newuser(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

#define NOWHERE "/nonexistent-qimg-test/x"
static long c_chown(void)
{
	return syscall(SYS_fchownat, AT_FDCWD, NOWHERE, 1000, 1000, 0);
}
static long c_mknod_chr(void)
{
	return syscall(SYS_mknodat, AT_FDCWD, NOWHERE, S_IFCHR | 0600, makedev(1, 3));
}
static long c_mknod_fifo(void)
{
	return syscall(SYS_mknodat, AT_FDCWD, NOWHERE, S_IFIFO | 0600, 0);
}
/* setuid "succeeds" and changes nothing. */
static long c_setuid(void)
{
	uid_t before = getuid();
	if (syscall(SYS_setuid, before + 4321) < 0)
		return -1;
	errno = EPERM;
	return getuid() == before ? 0 : -1;
}

static void test_single(void)
{
	const struct run_seccomp_profile *p = &run_seccomp_single, *only = &run_seccomp_single_only;
	struct sock_filter prog[RUN_SECCOMP_INSNS_MAX];
	int len = run_seccomp_build(p, ~(uint64_t)0, prog);
	printf("# single-id profile: %d instructions with every capability\n", len);
	T_OK("single: fits", len > 0 && len < RUN_SECCOMP_INSNS_MAX);
	T_OK("single: chown emulated (0, no ENOENT)", errno_in(p, 0, c_chown) == 0);
	T_OK("single: mknod of a device emulated", errno_in(p, 0, c_mknod_chr) == 0);
	T_OK("single: mknod of a FIFO runs (ENOENT)", errno_in(p, 0, c_mknod_fifo) == ENOENT);
	T_OK("single: setuid emulated, the uid unchanged", errno_in(p, 0, c_setuid) == 0);
	T_OK("single: the default profile below it (keyctl EPERM)", errno_in(p, 0, c_keyctl) == EPERM);
	T_OK("single: x32 ABI refused", errno_in(p, 0, c_x32) == ENOSYS);
	T_OK("single alone: chown emulated", errno_in(only, 0, c_chown) == 0);
	T_OK("single alone: keyctl as the kernel answers", errno_in(only, 0, c_keyctl) != EPERM);
	T_OK("single alone: x32 ABI refused", errno_in(only, 0, c_x32) == ENOSYS);
}

static void test_build(void)
{
	struct sock_filter prog[RUN_SECCOMP_INSNS_MAX];
	int none = run_seccomp_build(&run_seccomp_default, 0, prog);
	int all = run_seccomp_build(&run_seccomp_default, ~(uint64_t)0, prog);
	printf("# default profile: %d instructions with no capability, %d with all\n", none, all);
	T_OK("build: fits with no capability", none > 0 && none < RUN_SECCOMP_INSNS_MAX);
	T_OK("build: fits with every capability", all > 0 && all < RUN_SECCOMP_INSNS_MAX);
	T_OK("build: starts with the architecture check", prog[0].k == offsetof(struct seccomp_data, arch));
	static const struct run_seccomp_rule too_high[] = {{RUN_SECCOMP_NR_MAX, RUN_SC_ANY, 0, 0, 0, 0}};
	struct run_seccomp_profile bad = run_seccomp_default;
	bad.rules = too_high;
	bad.nrules = 1;
	T_OK("build: a nr the builder cannot take is refused", run_seccomp_build(&bad, 0, prog) < 0);
}

static void test_calls(void)
{
	uint64_t dflt = 0; /* the capabilities do not matter for these */
	T_OK("getpid allowed", errno_under(dflt, c_getpid) == 0);
	T_OK("keyctl: EPERM", errno_under(dflt, c_keyctl) == EPERM);
	T_OK("keyctl: EPERM with every capability", errno_under(~(uint64_t)0, c_keyctl) == EPERM);
	T_OK("bpf: EPERM without CAP_SYS_ADMIN/CAP_BPF", errno_under(dflt, c_bpf) == EPERM);
	T_OK("bpf: the kernel's EINVAL with CAP_BPF", errno_under(CAPB(CAP_BPF), c_bpf) == EINVAL);
	T_OK("clone3: ENOSYS without CAP_SYS_ADMIN", errno_under(dflt, c_clone3) == ENOSYS);
	T_OK("clone3: the kernel's EINVAL with CAP_SYS_ADMIN", errno_under(CAPB(CAP_SYS_ADMIN), c_clone3) == EINVAL);
	T_OK("clone without namespace flags: allowed", errno_under(dflt, c_clone_plain) == 0);
	T_OK("clone(CLONE_NEWUSER): EPERM", errno_under(dflt, c_clone_newuser) == EPERM);
	T_OK("unshare(CLONE_NEWUSER): EPERM", errno_under(dflt, c_unshare_user) == EPERM);
	T_OK("personality query: allowed", errno_under(dflt, c_pers_query) == 0);
	T_OK("personality(ADDR_NO_RANDOMIZE): EPERM", errno_under(dflt, c_pers_norandom) == EPERM);
	T_OK("socket(AF_VSOCK): EPERM", errno_under(dflt, c_vsock) == EPERM);
	T_OK("socket(AF_UNIX): allowed", errno_under(dflt, c_unix) == 0);
	T_OK("a syscall newer than the table: ENOSYS", errno_under(dflt, c_newer) == ENOSYS);
	T_OK("fchmodat2 (6.6, allowed): the kernel's ENOENT", errno_under(dflt, c_fchmodat2) == ENOENT);
	T_OK("io_uring_setup: EPERM", errno_under(~(uint64_t)0, c_io_uring) == EPERM);
	T_OK("x32 ABI: ENOSYS", errno_under(dflt, c_x32) == ENOSYS);
}

int main(void)
{
	test_build();
	test_calls();
	test_single();
	T_DONE();
}
