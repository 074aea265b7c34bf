/* The container's syscall filter: docker's default profile as a table, and the builder that turns a table into a
   classic BPF program (a binary search over the syscall numbers) in the caller's buffer. No libseccomp, no JSON,
   no allocation: the run path only walks a const table. */
#include "seccomp.h"

#include <asm/unistd.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/socket.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#if defined(__x86_64__)
#define SC_ARCH    AUDIT_ARCH_X86_64
#define SC_X32_BIT 0x40000000u /* __X32_SYSCALL_BIT: the x32 ABI's numbers, under the same AUDIT_ARCH */
#elif defined(__aarch64__)
#define SC_ARCH AUDIT_ARCH_AARCH64
#else
/* cppcheck-suppress preprocessorErrorDirective */
#error "run/seccomp.c: no seccomp profile for this architecture (add its AUDIT_ARCH and legacy calls)"
#endif

#define CAPB(c)      ((uint64_t)1 << (c))
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | (SECCOMP_RET_DATA & (uint32_t)(e)))

/* One row per syscall (or per argument case), named as in <asm/unistd.h>. */
/* clang-format off */
#define A(name)                         {__NR_##name, RUN_SC_ANY, 0, 0, SECCOMP_RET_ALLOW, 0}
#define A_CAP(name, caps)               {__NR_##name, RUN_SC_ANY, 0, 0, SECCOMP_RET_ALLOW, (caps)}
#define A_IF(name, cmp, arg, val)       {__NR_##name, (cmp), (arg), (val), SECCOMP_RET_ALLOW, 0}
#define DENY(name, e)                   {__NR_##name, RUN_SC_ANY, 0, 0, RET_ERRNO(e), 0}
#define DENY_IF(name, cmp, arg, val, e) {__NR_##name, (cmp), (arg), (val), RET_ERRNO(e), 0}
/* clang-format on */

/* Namespace flags of clone(2): only with CAP_SYS_ADMIN (moby's mask 0x7E020000). */
#define CLONE_NS_FLAGS                                                                                                 \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)
#define SYS_ADMIN CAPB(CAP_SYS_ADMIN)
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
/* Calls of Linux 6.5-6.7 that docker allows (moby#47341), missing from older kernel headers; one number on every
   architecture since 5.x. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_map_shadow_stack
#define __NR_map_shadow_stack 453
#endif
#ifndef __NR_futex_wake
#define __NR_futex_wake    454
#define __NR_futex_wait    455
#define __NR_futex_requeue 456
#endif

/* moby's profiles/seccomp/default.json, as the rows that matter on this architecture. Anything not allowed
   here returns EPERM (docker's defaultErrnoRet); a number above the highest one named here ENOSYS (runc's stub
   for syscalls newer than the profile). */
/* clang-format off */
static const struct run_seccomp_rule default_rules[] = {
	/* Denied whatever the capabilities; named for the record (the default answers the same). Kernel keyrings
	   are not namespaced: a container would reach the host user's keys. */
	DENY(add_key, EPERM), DENY(keyctl, EPERM), DENY(request_key, EPERM),
	DENY(kexec_load, EPERM), DENY(kexec_file_load, EPERM), DENY(userfaultfd, EPERM),
	DENY(swapon, EPERM), DENY(swapoff, EPERM), DENY(pivot_root, EPERM), DENY(move_pages, EPERM),
	DENY(migrate_pages, EPERM), DENY(nfsservctl, EPERM),
	/* io_uring runs calls the filter never sees; docker dropped it in 25.0 (moby#46762), containerd in 2.0. */
	DENY(io_uring_setup, EPERM), DENY(io_uring_enter, EPERM), DENY(io_uring_register, EPERM),

	/* Allowed only with the capability that guards them (docker's "includes": {"caps": ...}). */
	A_CAP(bpf, SYS_ADMIN | CAPB(CAP_BPF)), A_CAP(perf_event_open, SYS_ADMIN | CAPB(CAP_PERFMON)),
	A_CAP(open_by_handle_at, CAPB(CAP_DAC_READ_SEARCH)),
	A_CAP(fanotify_init, SYS_ADMIN), A_CAP(lookup_dcookie, SYS_ADMIN), A_CAP(mount, SYS_ADMIN),
	A_CAP(umount2, SYS_ADMIN), A_CAP(fsopen, SYS_ADMIN), A_CAP(fsconfig, SYS_ADMIN), A_CAP(fsmount, SYS_ADMIN),
	A_CAP(fspick, SYS_ADMIN), A_CAP(move_mount, SYS_ADMIN), A_CAP(open_tree, SYS_ADMIN),
	A_CAP(mount_setattr, SYS_ADMIN), A_CAP(quotactl, SYS_ADMIN), A_CAP(quotactl_fd, SYS_ADMIN),
	A_CAP(setdomainname, SYS_ADMIN), A_CAP(sethostname, SYS_ADMIN), A_CAP(setns, SYS_ADMIN),
	A_CAP(unshare, SYS_ADMIN), A_CAP(syslog, SYS_ADMIN | CAPB(CAP_SYSLOG)),
	A_CAP(reboot, CAPB(CAP_SYS_BOOT)), A_CAP(chroot, CAPB(CAP_SYS_CHROOT)),
	A_CAP(init_module, CAPB(CAP_SYS_MODULE)), A_CAP(finit_module, CAPB(CAP_SYS_MODULE)),
	A_CAP(delete_module, CAPB(CAP_SYS_MODULE)), A_CAP(acct, CAPB(CAP_SYS_PACCT)),
	A_CAP(kcmp, CAPB(CAP_SYS_PTRACE)), A_CAP(pidfd_getfd, CAPB(CAP_SYS_PTRACE)),
	A_CAP(process_madvise, CAPB(CAP_SYS_PTRACE)),
	A_CAP(settimeofday, CAPB(CAP_SYS_TIME)), A_CAP(clock_settime, CAPB(CAP_SYS_TIME)),
	A_CAP(vhangup, CAPB(CAP_SYS_TTY_CONFIG)),
	A_CAP(get_mempolicy, CAPB(CAP_SYS_NICE)), A_CAP(mbind, CAPB(CAP_SYS_NICE)),
	A_CAP(set_mempolicy, CAPB(CAP_SYS_NICE)), A_CAP(set_mempolicy_home_node, CAPB(CAP_SYS_NICE)),

	/* New namespaces only with CAP_SYS_ADMIN; clone3's flags sit in memory the filter cannot read, so without
	   it clone3 says ENOSYS and libc falls back to clone, whose flags it can. */
	A_CAP(clone, SYS_ADMIN), A_IF(clone, RUN_SC_NONE_SET, 0, CLONE_NS_FLAGS),
	A_CAP(clone3, SYS_ADMIN), DENY(clone3, ENOSYS),
	DENY_IF(socket, RUN_SC_EQ, 0, AF_VSOCK, EPERM), A(socket),
	/* PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query; not ADDR_NO_RANDOMIZE & co. */
	A_IF(personality, RUN_SC_EQ, 0, 0x0), A_IF(personality, RUN_SC_EQ, 0, 0x8),
	A_IF(personality, RUN_SC_EQ, 0, 0x20000), A_IF(personality, RUN_SC_EQ, 0, 0x20008),
	A_IF(personality, RUN_SC_EQ, 0, 0xffffffff),

	/* Allowed. */
	A(ptrace), A(process_vm_readv), A(process_vm_writev),
	A(accept), A(accept4), A(adjtimex), A(bind), A(brk), A(capget), A(capset), A(chdir), A(clock_adjtime),
	A(clock_getres), A(clock_gettime), A(clock_nanosleep), A(close), A(close_range), A(connect),
	A(copy_file_range), A(dup), A(dup3), A(epoll_create1), A(epoll_ctl), A(epoll_pwait), A(epoll_pwait2),
	A(eventfd2), A(execve), A(execveat), A(exit), A(exit_group), A(faccessat), A(faccessat2), A(fadvise64),
	A(fallocate), A(fanotify_mark), A(fchdir), A(fchmod), A(fchmodat), A(fchown), A(fchownat), A(fcntl),
	A(fdatasync), A(fgetxattr), A(flistxattr), A(flock), A(fremovexattr), A(fsetxattr), A(fstat), A(fstatfs),
	A(fsync), A(ftruncate), A(futex), A(futex_waitv), A(get_robust_list), A(getcpu), A(getcwd), A(getdents64),
	A(getegid), A(geteuid), A(getgid), A(getgroups), A(getitimer), A(getpeername), A(getpgid), A(getpid),
	A(getppid), A(getpriority), A(getrandom), A(getresgid), A(getresuid), A(getrlimit), A(getrusage), A(getsid),
	A(getsockname), A(getsockopt), A(gettid), A(gettimeofday), A(getuid), A(getxattr), A(inotify_add_watch),
	A(inotify_init1), A(inotify_rm_watch), A(io_cancel), A(io_destroy), A(io_getevents), A(io_pgetevents),
	A(io_setup), A(io_submit), A(ioctl),
	A(ioprio_get), A(ioprio_set), A(kill), A(landlock_add_rule), A(landlock_create_ruleset),
	A(landlock_restrict_self), A(lgetxattr), A(linkat), A(listen), A(listxattr), A(llistxattr), A(lremovexattr),
	A(lseek), A(lsetxattr), A(madvise), A(membarrier), A(memfd_create), A(memfd_secret), A(mincore),
	A(mkdirat), A(mknodat), A(mlock), A(mlock2), A(mlockall), A(mmap), A(mprotect), A(mq_getsetattr),
	A(mq_notify), A(mq_open), A(mq_timedreceive), A(mq_timedsend), A(mq_unlink), A(mremap), A(msgctl), A(msgget),
	A(msgrcv), A(msgsnd), A(msync), A(munlock), A(munlockall), A(munmap), A(name_to_handle_at), A(nanosleep),
	A(newfstatat), A(openat), A(openat2), A(pidfd_open), A(pidfd_send_signal), A(pipe2), A(pkey_alloc),
	A(pkey_free), A(pkey_mprotect), A(ppoll), A(prctl), A(pread64), A(preadv), A(preadv2), A(prlimit64),
	A(process_mrelease), A(pselect6), A(pwrite64), A(pwritev), A(pwritev2), A(read), A(readahead), A(readlinkat),
	A(readv), A(recvfrom), A(recvmmsg), A(recvmsg), A(remap_file_pages), A(removexattr), A(renameat),
	A(renameat2), A(restart_syscall), A(rseq), A(rt_sigaction), A(rt_sigpending), A(rt_sigprocmask),
	A(rt_sigqueueinfo), A(rt_sigreturn), A(rt_sigsuspend), A(rt_sigtimedwait), A(rt_tgsigqueueinfo),
	A(sched_get_priority_max), A(sched_get_priority_min), A(sched_getaffinity), A(sched_getattr),
	A(sched_getparam), A(sched_getscheduler), A(sched_rr_get_interval), A(sched_setaffinity), A(sched_setattr),
	A(sched_setparam), A(sched_setscheduler), A(sched_yield), A(seccomp), A(semctl), A(semget), A(semop),
	A(semtimedop), A(sendfile), A(sendmmsg), A(sendmsg), A(sendto), A(set_robust_list), A(set_tid_address),
	A(setfsgid), A(setfsuid), A(setgid), A(setgroups), A(setitimer), A(setpgid), A(setpriority), A(setregid),
	A(setresgid), A(setresuid), A(setreuid), A(setrlimit), A(setsid), A(setsockopt), A(setuid), A(setxattr),
	A(shmat), A(shmctl), A(shmdt), A(shmget), A(shutdown), A(sigaltstack), A(signalfd4), A(socketpair),
	A(splice), A(statfs), A(statx), A(symlinkat), A(sync), A(sync_file_range), A(syncfs), A(sysinfo),
	A(tee), A(tgkill), A(timer_create), A(timer_delete), A(timer_getoverrun), A(timer_gettime), A(timer_settime),
	A(timerfd_create), A(timerfd_gettime), A(timerfd_settime), A(times), A(tkill), A(truncate), A(umask),
	A(uname), A(unlinkat), A(utimensat), A(vmsplice), A(wait4), A(waitid), A(write), A(writev),
	A(cachestat), A(fchmodat2), A(map_shadow_stack), A(futex_wake), A(futex_wait), A(futex_requeue),
#if defined(__x86_64__)
	/* The x86_64-only calls (the legacy ones the generic table dropped). */
	DENY(uselib, EPERM), DENY(ustat, EPERM), DENY(sysfs, EPERM),
	A_CAP(iopl, CAPB(CAP_SYS_RAWIO)), A_CAP(ioperm, CAPB(CAP_SYS_RAWIO)),
	A(access), A(alarm), A(arch_prctl), A(chmod), A(chown), A(creat), A(dup2), A(epoll_create), A(epoll_ctl_old),
	A(epoll_wait), A(epoll_wait_old), A(eventfd), A(fork), A(futimesat), A(get_thread_area), A(getdents),
	A(getpgrp), A(inotify_init), A(lchown), A(link), A(lstat), A(mkdir), A(mknod), A(modify_ldt), A(open),
	A(pause), A(pipe), A(poll), A(readlink), A(rename), A(rmdir), A(select), A(set_thread_area), A(signalfd),
	A(stat), A(symlink), A(time), A(unlink), A(utime), A(utimes), A(vfork),
#endif
};
/* clang-format on */

const struct run_seccomp_profile run_seccomp_default = {
    .name = "default",
    .rules = default_rules,
    .nrules = sizeof default_rules / sizeof default_rules[0],
    .ret_default = RET_ERRNO(EPERM),
    .ret_unknown = RET_ERRNO(ENOSYS),
    .ret_foreign = RET_ERRNO(ENOSYS),
};

/* The single-id mode's root emulation (Charliecloud's and enroot's approach): a user namespace has only the user's
   id, so the calls that need another one would fail with EINVAL or EPERM, and package managers stop. They return
   0 without doing anything; ERRNO with errno 0 is how (the kernel sets the return value to -0 and skips the call).
   setfsuid/setfsgid return the previous id, which is 0 here too; their query form (-1) runs. mknod of a FIFO or a
   file runs; of a device it "succeeds" and creates nothing. */
/* clang-format off */
#define EMU(name)                 {__NR_##name, RUN_SC_ANY, 0, 0, RET_ERRNO(0), 0, 0}
#define EMU_IF_NE(name, arg, val) {__NR_##name, RUN_SC_NE, (arg), (val), RET_ERRNO(0), 0, 0}
#define EMU_IF_TYPE(name, arg, t) {__NR_##name, RUN_SC_MASK_EQ, (arg), (t), RET_ERRNO(0), 0, S_IFMT}
static const struct run_seccomp_rule single_rules[] = {
	EMU(fchown), EMU(fchownat),
	EMU(setuid), EMU(setgid), EMU(setreuid), EMU(setregid), EMU(setresuid), EMU(setresgid), EMU(setgroups),
	EMU_IF_NE(setfsuid, 0, 0xffffffffu), EMU_IF_NE(setfsgid, 0, 0xffffffffu),
	EMU(capset),
	EMU_IF_TYPE(mknodat, 2, S_IFCHR), EMU_IF_TYPE(mknodat, 2, S_IFBLK),
#if defined(__x86_64__)
	EMU(chown), EMU(lchown),
	EMU_IF_TYPE(mknod, 1, S_IFCHR), EMU_IF_TYPE(mknod, 1, S_IFBLK),
#endif
};
/* clang-format on */

const struct run_seccomp_profile run_seccomp_single = {
    .name = "single-id",
    .rules = single_rules,
    .nrules = sizeof single_rules / sizeof single_rules[0],
    .ret_default = RET_ERRNO(EPERM),
    .ret_unknown = RET_ERRNO(ENOSYS),
    .ret_foreign = RET_ERRNO(ENOSYS),
    .base = &run_seccomp_default,
};

const struct run_seccomp_profile run_seccomp_single_only = {
    .name = "single-id (unconfined)",
    .rules = single_rules,
    .nrules = sizeof single_rules / sizeof single_rules[0],
    .ret_default = SECCOMP_RET_ALLOW,
    .ret_unknown = SECCOMP_RET_ALLOW,
    .ret_foreign = RET_ERRNO(ENOSYS),
};

/* ---- the builder ---- */

/* The numbers 0..maxnr are cut into spans that share one answer (a span of allowed calls, a gap answered by the
   default); a number whose answer depends on an argument is a span of its own. The program checks the ABI, then
   finds the span by a binary search: about 2 instructions per span, 6 comparisons deep for docker's profile. */

#define NO_RULE 0xffffu

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))
#else
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i) + 4))
#endif
#define OFF_NR   ((uint32_t)offsetof(struct seccomp_data, nr))
#define OFF_ARCH ((uint32_t)offsetof(struct seccomp_data, arch))

struct span {
	uint16_t start; /* first nr; the span ends where the next one starts */
	uint16_t rule;  /* a number with argument tests: its first rule that applies; else NO_RULE */
	uint32_t ret;   /* otherwise: the answer of the whole span */
};

struct emit {
	struct sock_filter *out;
	int n;
	bool full;
	const struct run_seccomp_profile *p;
	const uint16_t *next; /* per rule: the next rule of its nr that applies */
	const struct span *spans;
};

/* Rule i of p's rules followed by its base's. */
static const struct run_seccomp_rule *rule_at(const struct run_seccomp_profile *p, size_t i)
{
	return i < p->nrules ? &p->rules[i] : &p->base->rules[i - p->nrules];
}

static size_t rules_count(const struct run_seccomp_profile *p)
{
	return p->nrules + (p->base ? p->base->nrules : 0);
}

/* Append an instruction (with out NULL: only count it). */
static int put(struct emit *e, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (e->n >= RUN_SECCOMP_INSNS_MAX) {
		e->full = true;
		return e->n;
	}
	if (e->out)
		e->out[e->n] = (struct sock_filter){code, jt, jf, k};
	return e->n++;
}

static void put_ret(struct emit *e, uint32_t ret)
{
	put(e, BPF_RET | BPF_K, ret, 0, 0);
}

/* The rules of one number in order (A = nr on entry), down to an unconditional one or the default. */
static void emit_rules(struct emit *e, unsigned i)
{
	for (; i != NO_RULE; i = e->next[i]) {
		const struct run_seccomp_rule *r = rule_at(e->p, i);
		if (r->cmp == RUN_SC_ANY) {
			put_ret(e, r->ret);
			return;
		}
		put(e, BPF_LD | BPF_W | BPF_ABS, ARG_LO(r->arg), 0, 0);
		if (r->cmp == RUN_SC_NONE_SET || r->cmp == RUN_SC_MASK_EQ)
			put(e, BPF_ALU | BPF_AND | BPF_K, r->cmp == RUN_SC_NONE_SET ? r->val : r->mask, 0, 0);
		uint32_t want = r->cmp == RUN_SC_NONE_SET ? 0 : r->val;
		/* EQ, NONE_SET and MASK_EQ fall into the return on a match; NE jumps over it. */
		put(e, BPF_JMP | BPF_JEQ | BPF_K, want, r->cmp == RUN_SC_NE, r->cmp != RUN_SC_NE);
		put_ret(e, r->ret);
		put(e, BPF_LD | BPF_W | BPF_ABS, OFF_NR, 0, 0);
	}
	put_ret(e, e->p->ret_default);
}

/* Binary search over spans[lo, hi): A >= spans[mid].start goes right. */
static void emit_tree(struct emit *e, size_t lo, size_t hi)
{
	if (hi - lo == 1) {
		if (e->spans[lo].rule != NO_RULE)
			emit_rules(e, e->spans[lo].rule);
		else
			put_ret(e, e->spans[lo].ret);
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	/* The left half's length, counted first: a conditional jump over it takes 8 bits, a longer one a JA. */
	struct emit count = *e;
	count.out = NULL;
	count.n = 0;
	emit_tree(&count, lo, mid);
	if (count.n <= 255) {
		put(e, BPF_JMP | BPF_JGE | BPF_K, e->spans[mid].start, (uint8_t)count.n, 0);
	} else {
		put(e, BPF_JMP | BPF_JGE | BPF_K, e->spans[mid].start, 0, 1);
		put(e, BPF_JMP | BPF_JA, (uint32_t)count.n, 0, 0);
	}
	emit_tree(e, lo, mid);
	emit_tree(e, mid, hi);
}

int run_seccomp_build(const struct run_seccomp_profile *p, uint64_t caps, struct sock_filter *out)
{
	uint16_t first[RUN_SECCOMP_NR_MAX], next[1024];
	struct span spans[RUN_SECCOMP_NR_MAX];
	size_t nrules = rules_count(p);
	if (nrules > sizeof next / sizeof next[0])
		return -1;
	memset(first, 0xff, sizeof first);
	unsigned maxnr = 0;
	/* Backwards, so that each number's list keeps the tables' order (ours before the base's). */
	for (size_t i = nrules; i-- > 0;) {
		const struct run_seccomp_rule *r = rule_at(p, i);
		if (r->nr >= RUN_SECCOMP_NR_MAX)
			return -1;
		if (r->nr > maxnr)
			maxnr = r->nr;
		if (r->caps && !(r->caps & caps))
			continue;
		next[i] = first[r->nr];
		first[r->nr] = (uint16_t)i;
	}
	size_t nspans = 0;
	for (unsigned nr = 0; nr <= maxnr; nr++) {
		uint16_t i = first[nr];
		bool cond = i != NO_RULE && rule_at(p, i)->cmp != RUN_SC_ANY;
		uint32_t ret = i == NO_RULE ? p->ret_default : rule_at(p, i)->ret;
		if (cond || !nspans || spans[nspans - 1].rule != NO_RULE || spans[nspans - 1].ret != ret)
			spans[nspans++] = (struct span){(uint16_t)nr, cond ? i : NO_RULE, ret};
	}
	struct emit e = {.out = out, .p = p, .next = next, .spans = spans};
	put(&e, BPF_LD | BPF_W | BPF_ABS, OFF_ARCH, 0, 0);
	put(&e, BPF_JMP | BPF_JEQ | BPF_K, SC_ARCH, 1, 0);
	put_ret(&e, p->ret_foreign);
	put(&e, BPF_LD | BPF_W | BPF_ABS, OFF_NR, 0, 0);
#ifdef SC_X32_BIT
	put(&e, BPF_JMP | BPF_JGE | BPF_K, SC_X32_BIT, 0, 1);
	put_ret(&e, p->ret_foreign);
#endif
	put(&e, BPF_JMP | BPF_JGT | BPF_K, maxnr, 0, 1);
	put_ret(&e, p->ret_unknown);
	emit_tree(&e, 0, nspans);
	return e.full ? -1 : e.n;
}

int run_seccomp_install(const struct sock_filter *prog, int len)
{
	struct sock_fprog fp = {.len = (unsigned short)len, .filter = (struct sock_filter *)prog};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == 0)
		return 0;
	if (errno != EACCES)
		return -1;
	/* No CAP_SYS_ADMIN here: the kernel accepts a filter only from a task that cannot gain privileges. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0);
}
