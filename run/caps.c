/* Capabilities of the container process: podman's default set, --cap-add/--cap-drop, bounding and ambient sets. */
#include "run_int.h"

#include <errno.h>
#include <linux/capability.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* clang-format off */
static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
};
/* clang-format on */
#define NCAP_NAMES ((int)(sizeof cap_names / sizeof cap_names[0]))

#define BIT(c) ((uint64_t)1 << (c))

/* podman's default set (containers.conf default_capabilities). */
const uint64_t run_caps_default = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FOWNER) | BIT(CAP_FSETID) |
                                  BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SETFCAP) | BIT(CAP_SETGID) |
                                  BIT(CAP_SETPCAP) | BIT(CAP_SETUID) | BIT(CAP_SYS_CHROOT);

int run_cap_parse(const char *name, uint64_t *mask)
{
	if (!strncasecmp(name, "CAP_", 4))
		name += 4;
	if (!strcasecmp(name, "ALL")) {
		*mask = RUN_CAPS_ALL;
		return 0;
	}
	for (int i = 0; i < NCAP_NAMES; i++) {
		if (!strcasecmp(name, cap_names[i])) {
			*mask = BIT(i);
			return 0;
		}
	}
	return -1;
}

uint64_t run_caps_effective_set(uint64_t add, uint64_t drop)
{
	uint64_t set = run_caps_default;
	/* Docker's order: drop ALL first, then add; a named drop beats a named add. */
	if (drop == RUN_CAPS_ALL)
		set = 0;
	set |= add;
	if (drop != RUN_CAPS_ALL)
		set &= ~drop;
	return set;
}

/* Highest capability the kernel knows (no /proc read: probe the bounding set). */
static int cap_last(void)
{
	int c = CAP_LAST_CAP;
	while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
		c++;
	while (c > 0 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
		c--;
	return c;
}

uint64_t run_caps_known(void)
{
	int last = cap_last();
	return last >= 63 ? RUN_CAPS_ALL : (BIT(last + 1) - 1);
}

int run_caps_bound(uint64_t set, int *failed_cap)
{
	int last = cap_last();
	for (int c = 0; c <= last; c++) {
		if (set & BIT(c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
			*failed_cap = c;
			return -1;
		}
	}
	return 0;
}

int run_caps_set(uint64_t permitted, uint64_t inheritable)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
	    {(uint32_t)permitted, (uint32_t)permitted, (uint32_t)inheritable},
	    {(uint32_t)(permitted >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32)},
	};
	return (int)syscall(SYS_capset, &hdr, data);
}

int run_caps_ambient(uint64_t set)
{
	for (int c = 0; c < 64; c++)
		if ((set & BIT(c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			return -1;
	return 0;
}

const char *run_cap_name(int cap)
{
	return cap >= 0 && cap < NCAP_NAMES ? cap_names[cap] : "?";
}
