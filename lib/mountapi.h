/* The new mount API (fsopen ... mount_setattr) and close_range. glibc 2.36 declares them in <sys/mount.h> and
   <unistd.h>; musl 1.2.3, which the static qimg is built with (Makefile: glibc's start-up costs ~1 ms of cpuid
   traps per process in a VM), does not: there they are thin wrappers of the system calls, with the constants
   from the kernel's own headers. Include after <sys/mount.h>. */
#ifndef QIMG_MOUNTAPI_H
#define QIMG_MOUNTAPI_H

#ifndef __GLIBC__
#include <linux/close_range.h>
#include <linux/mount.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int fsopen(const char *fsname, unsigned int flags)
{
	return (int)syscall(SYS_fsopen, fsname, flags);
}

static inline int fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

static inline int fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
	return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

static inline int move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                             unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

static inline int open_tree(int dirfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

static inline int mount_setattr(int dirfd, const char *path, unsigned int flags, struct mount_attr *attr, size_t size)
{
	return (int)syscall(SYS_mount_setattr, dirfd, path, flags, attr, size);
}

static inline int close_range(unsigned int first, unsigned int last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}
#endif

#endif
