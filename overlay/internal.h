/* Private to overlay/: the overlay on-disk conventions shared by the unpacker (heavy) and export (light). */
#ifndef QIMG_OVERLAY_INTERNAL_H
#define QIMG_OVERLAY_INTERNAL_H

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* OCI whiteout names inside a layer tarball. */
#define OCI_WH_PREFIX      ".wh."
#define OCI_WH_META_PREFIX ".wh..wh." /* aufs metadata (".wh..wh.plnk", ...): never content */
#define OCI_WH_OPAQUE      ".wh..wh..opq"

/* The overlay format on disk (kernel overlayfs mounted with userxattr, and fuse-overlayfs >= 1.x, both read it):
   a whiteout is a 0:0 character device, an opaque directory carries user.overlay.opaque=y. */
#define OVL_OPAQUE_XATTR "user.overlay.opaque"
#define OVL_OPAQUE_VALUE "y"

/* A 0:0 character device: an overlay whiteout. */
static inline bool ovl_is_whiteout(const struct stat *sb)
{
	return S_ISCHR(sb->st_mode) && sb->st_rdev == makedev(0, 0);
}

/* Extended attributes that belong to an overlay implementation (or would steer one), never to image content:
   never copied from a tarball into a layer, never exported. */
static inline bool ovl_xattr_reserved(const char *name)
{
	static const char *const prefixes[] = {"trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.",
	                                       "user.containers.", "security.fuseoverlayfs."};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* Extended attributes an image may carry into a layer: user.* (minus the reserved ones) and file capabilities. */
static inline bool ovl_xattr_allowed(const char *name)
{
	if (ovl_xattr_reserved(name))
		return false;
	return !strncmp(name, "user.", 5) || !strcmp(name, "security.capability");
}

#endif
