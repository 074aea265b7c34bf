/* The container's syscall filter (run/seccomp.c): a profile is a table of rules, turned into classic BPF in a
   caller's buffer without allocation, and loaded before the command drops its privileges. */
#ifndef QIMG_RUN_SECCOMP_H
#define QIMG_RUN_SECCOMP_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

/* The argument test of a rule, on the low 32 bits of args[arg] (every argument the profiles test is an int or a
   flag word below bit 32). */
enum run_seccomp_cmp {
	RUN_SC_ANY,      /* no test */
	RUN_SC_EQ,       /* args[arg] == val */
	RUN_SC_NE,       /* args[arg] != val */
	RUN_SC_NONE_SET, /* (args[arg] & val) == 0 */
	RUN_SC_MASK_EQ,  /* (args[arg] & mask) == val */
};

/* syscall nr -> what it returns. The first rule of a nr that applies decides; a rule with caps applies only
   when the container holds one of them (resolved when the program is built, as docker's "includes: caps"). */
struct run_seccomp_rule {
	uint16_t nr;
	uint8_t cmp, arg; /* enum run_seccomp_cmp; the argument's index */
	uint32_t val;
	uint32_t ret;  /* SECCOMP_RET_ALLOW, or SECCOMP_RET_ERRNO | errno */
	uint64_t caps; /* 0: always */
	uint32_t mask; /* RUN_SC_MASK_EQ's */
};

struct run_seccomp_profile {
	const char *name;
	const struct run_seccomp_rule *rules;
	size_t nrules;
	uint32_t ret_default; /* a nr up to the highest the table names, without a rule that applies */
	uint32_t ret_unknown; /* a nr above it: newer than the table (libc falls back on ENOSYS) */
	uint32_t ret_foreign; /* another ABI: i386 and x32 on x86_64, arm32 on aarch64 */
	/* A profile layered under this one (NULL: none): for each nr its rules come after ours. The ret_* above
	   still answer the rest, so a layered profile repeats its base's. */
	const struct run_seccomp_profile *base;
};

/* docker's default profile (moby profiles/seccomp/default.json) for this architecture; see docs/SECURITY.md. */
extern const struct run_seccomp_profile run_seccomp_default;
/* The single-id mode's root emulation over the default profile: chown & co., set*id, setgroups, capset and mknod
   of devices return 0 without doing anything (SECCOMP_RET_ERRNO with errno 0). */
extern const struct run_seccomp_profile run_seccomp_single;
/* The same emulation alone (single-id mode with seccomp=unconfined): everything else allowed, other ABIs
   refused (ENOSYS), so that no entry point bypasses it. */
extern const struct run_seccomp_profile run_seccomp_single_only;

#define RUN_SECCOMP_NR_MAX    512 /* the builder handles syscall numbers below this */
#define RUN_SECCOMP_INSNS_MAX 512 /* room for a program: 4 KiB */

/* Write the program of profile p for a container holding the capabilities caps (bit n = capability n) into
   out[RUN_SECCOMP_INSNS_MAX]. Returns its length, or -1 when the table does not fit the builder (a nr over
   RUN_SECCOMP_NR_MAX, a program too long): a build-time defect, caught by test_seccomp. */
int run_seccomp_build(const struct run_seccomp_profile *p, uint64_t caps, struct sock_filter *out);

/* Load the program on the calling thread; it is inherited across fork and kept across execve. Without
   no_new_privs the kernel asks for CAP_SYS_ADMIN in our user namespace: when we lack it, no_new_privs is set
   first (seccomp(2)). -1 with errno. */
int run_seccomp_install(const struct sock_filter *prog, int len);

#endif
