/* A seccomp filter under which openat2 fails with ENOSYS, as on kernels before 5.6 and under valgrind 3.19:
   for the tests of the paths that fall back to an O_NOFOLLOW walk (test_h_unpack, and through
   tests/tools/noopenat2.c, e2e eco_load). */
#ifndef QIMG_TEST_NOOPENAT2_H
#define QIMG_TEST_NOOPENAT2_H

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* 0 when this process (and what it execs) now gets ENOSYS from openat2. */
static inline int no_openat2(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? -1
	                                                                                                           : 0;
}

#endif
