/* Unit tests: ovl_mount (overlay/mount.c) in a private mount namespace: layer order, read-only mounts (one layer:
   a read-only bind; two or more: an overlay without upper), many layers, fuse-overlayfs. Needs root (as an
   unprivileged user every case reports "ok ... (skipped: not root)"). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../overlay/overlay.h"
#include "t.h"

#define NLAYERS 70

static char base[256];

static void put(const char *rel, const char *content)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", base, rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static char *get(const char *rel)
{
	static char buf[256];
	char p[512];
	snprintf(p, sizeof p, "%s/%s", base, rel);
	FILE *f = fopen(p, "r");
	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, sizeof buf, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void dir(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", base, rel);
	(void)mkdir(p, 0755);
}

/* Layers l0 (bottom) .. l<n-1>: each has file "top" = its index and file "only<i>". */
static void make_layers(int n, const char **lowers, char names[][600])
{
	for (int i = 0; i < n; i++) {
		char rel[64], content[16];
		snprintf(rel, sizeof rel, "l%d", i);
		dir(rel);
		snprintf(rel, sizeof rel, "l%d/top", i);
		snprintf(content, sizeof content, "%d\n", i);
		put(rel, content);
		snprintf(rel, sizeof rel, "l%d/only%d", i, i);
		put(rel, "x\n");
		snprintf(names[i], 600, "%s/l%d", base, i);
		lowers[i] = names[i];
	}
}

static bool writable(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", base, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static void case_kernel(const char **lowers)
{
	struct qerr err = {0};
	char target[512], upper[512], work[512];
	snprintf(target, sizeof target, "%s/m", base);
	snprintf(upper, sizeof upper, "%s/u", base);
	snprintf(work, sizeof work, "%s/w", base);
	dir("m");
	dir("u");
	dir("w");

	struct ovl_mount_opts o = {lowers, 3, upper, work, target, OVL_KERNEL};
	int rc = ovl_mount(&o, &err);
	T_OK("kernel: mount 3 layers + upper", rc == 0);
	T_STREQ("kernel: top-most layer wins", "2", get("m/top"));
	T_STREQ("kernel: bottom layer visible", "x", get("m/only0"));
	T_OK("kernel: writable with an upper", writable("m/new"));
	char up[600];
	snprintf(up, sizeof up, "%s/u/new", base);
	T_OK("kernel: the write lands in the upper", access(up, F_OK) == 0);
	umount2(target, MNT_DETACH);

	struct ovl_mount_opts ro = {lowers, 2, NULL, NULL, target, OVL_KERNEL};
	T_OK("kernel: two lowers, no upper", ovl_mount(&ro, &err) == 0);
	T_STREQ("kernel: no upper: layer 1 on top", "1", get("m/top"));
	T_OK("kernel: no upper is read-only", !writable("m/x") && errno == EROFS);
	umount2(target, MNT_DETACH);

	struct ovl_mount_opts one = {lowers, 1, NULL, NULL, target, OVL_KERNEL};
	T_OK("kernel: one layer, no upper (read-only bind)", ovl_mount(&one, &err) == 0);
	T_STREQ("kernel: one layer content", "0", get("m/top"));
	T_OK("kernel: one layer is read-only", !writable("m/x") && errno == EROFS);
	umount2(target, MNT_DETACH);

	struct ovl_mount_opts none = {lowers, 0, NULL, NULL, target, OVL_KERNEL};
	T_OK("kernel: no layers is an error", ovl_mount(&none, &err) < 0 && strstr(err.msg, "no layers"));
}

static void case_many(const char **lowers)
{
	struct qerr err = {0};
	char target[512];
	snprintf(target, sizeof target, "%s/m", base);
	struct ovl_mount_opts o = {lowers, NLAYERS, NULL, NULL, target, OVL_KERNEL};
	int rc = ovl_mount(&o, &err);
	if (rc < 0)
		printf("# %s\n", err.msg);
	T_OK("kernel: 70 layers with long paths (past a page of lowerdir)", rc == 0);
	char want[16];
	snprintf(want, sizeof want, "%d", NLAYERS - 1);
	T_STREQ("kernel: 70 layers: top wins", want, get("m/top"));
	T_STREQ("kernel: 70 layers: bottom visible", "x", get("m/only0"));
	umount2(target, MNT_DETACH);
}

static void case_fuse(const char **lowers)
{
	if (access("/usr/bin/fuse-overlayfs", X_OK) != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("ok fuse: (skipped: no fuse-overlayfs or /dev/fuse)\n");
		return;
	}
	struct qerr err = {0};
	char target[512], upper[512], work[512];
	snprintf(target, sizeof target, "%s/m", base);
	snprintf(upper, sizeof upper, "%s/fu", base);
	snprintf(work, sizeof work, "%s/fw", base);
	dir("fu");
	dir("fw");
	struct ovl_mount_opts o = {lowers, 3, upper, work, target, OVL_FUSE};
	int rc = ovl_mount(&o, &err);
	if (rc < 0)
		printf("# %s\n", err.msg);
	T_OK("fuse: mount 3 layers + upper", rc == 0);
	T_STREQ("fuse: top-most layer wins (same order as the kernel)", "2", get("m/top"));
	T_STREQ("fuse: bottom layer visible", "x", get("m/only0"));
	T_OK("fuse: writable", writable("m/new"));
	umount2(target, MNT_DETACH);
	const char *bad[] = {"/tmp/a:b"};
	struct ovl_mount_opts colon = {bad, 1, NULL, NULL, target, OVL_FUSE};
	T_OK("fuse: a ':' in a path is refused", ovl_mount(&colon, &err) < 0 && strstr(err.msg, "':'"));
}

static void case_kind(void)
{
	enum ovl_kind k;
	T_OK("kind: kernel", ovl_kind_parse("kernel", &k) == 0 && k == OVL_KERNEL);
	T_OK("kind: fuse", ovl_kind_parse("fuse", &k) == 0 && k == OVL_FUSE);
	T_OK("kind: bogus", ovl_kind_parse("zfs", &k) < 0);
	setenv("QIMG_OVERLAY", "fuse", 1);
	T_OK("kind: default from QIMG_OVERLAY", ovl_kind_default() == OVL_FUSE);
	unsetenv("QIMG_OVERLAY");
	T_OK("kind: default kernel", ovl_kind_default() == OVL_KERNEL);
}

int main(void)
{
	case_kind();
	if (geteuid() != 0) {
		printf("ok mount cases (skipped: not root)\n");
		T_DONE();
	}
	/* A long base path: 70 layers of it are far past one page in a legacy lowerdir string. */
	snprintf(base, sizeof base, "/tmp/qimg-test-ovl-%d-padding-padding-padding-padding-padding-padding",
	         (int)getpid());
	if (mkdir(base, 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("FAIL setup: %s\n", strerror(errno));
		return 1;
	}
	/* The scratch dir is a tmpfs of this namespace only: nothing is left behind. */
	if (mount("tmpfs", base, "tmpfs", 0, "mode=0755") < 0) {
		printf("FAIL tmpfs: %s\n", strerror(errno));
		return 1;
	}
	static char names[NLAYERS][600];
	const char *lowers[NLAYERS];
	make_layers(NLAYERS, lowers, names);
	case_kernel(lowers);
	case_many(lowers);
	case_fuse(lowers);
	umount2(base, MNT_DETACH);
	rmdir(base);
	T_DONE();
}
