/* Layers in overlay format: secure unpacking of layer tarballs, mounting (kernel overlayfs / fuse-overlayfs), export. */
#ifndef QIMG_OVERLAY_H
#define QIMG_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>
#include "../store/store.h"

/* ---- unpack (overlay/unpack.c; heavy: libarchive, libcrypto, zstd) ---- */

struct ovl_layer_job {
	const char *blob_digest; /* compressed blob in the store */
	const char *media_type;  /* OCI/Docker layer media type (tar, tar+gzip, tar+zstd) */
	const char *diff_id;     /* expected sha256 of the uncompressed tar */
	const char *layer_id;    /* target: layers/<layer_id>/ */
};

struct ovl_unpack_limits {
	int64_t max_bytes;    /* max uncompressed bytes of one layer; 0 = default */
	int64_t max_ratio;    /* max uncompressed/compressed ratio (checked once past 1 MiB); 0 = default */
	int64_t max_entries;  /* max entries in one layer; 0 = default */
};

/* Unpack every job whose layer is not yet present, in parallel (workers; 0 = one per core), each once even
   across concurrent processes (per-layer lock). Rootless stores unpack inside the user namespace with the full
   subuid map. On failure no partial layer is left. */
int ovl_unpack_layers(struct store *st, const struct ovl_layer_job *jobs, size_t n, int workers,
		      const struct ovl_unpack_limits *lim, struct qerr *err);

/* ---- mount (overlay/mount.c; light: libc only) ---- */

enum ovl_kind { OVL_KERNEL = 0, OVL_FUSE = 1 };

struct ovl_mount_opts {
	const char *const *lowers; /* absolute layer dirs, bottom (first applied) first */
	size_t nlower;
	const char *upper;         /* NULL: read-only mount of the lowers */
	const char *work;
	const char *target;
	enum ovl_kind kind;
};
/* Mount an overlay of any number of lowers (new mount API `lowerdir+`, so no page limit). */
int ovl_mount(const struct ovl_mount_opts *o, struct qerr *err);
/* Which overlay to use when the user did not say: $QIMG_OVERLAY ("kernel"/"fuse") or kernel. */
enum ovl_kind ovl_kind_default(void);
int ovl_kind_parse(const char *s, enum ovl_kind *out);

/* ---- export (overlay/export.c; light) ---- */

/* Flatten spec's layers into dest (created; must be empty or absent): whiteouts applied, no overlay marks.
   own: chown everything to the caller instead of keeping the mapped owners. */
int ovl_export_dir(struct store *st, const struct image_spec *spec, const char *dest, bool own, struct qerr *err);

/* ---- unpack: defaults and what it leaves behind (appended by the unpacker) ---- */

/* Bomb limits used for a zero field of struct ovl_unpack_limits: 16 GiB uncompressed per layer, a ratio of
   1000:1 once past 1 MiB of output, 10 million tar entries. */
#define OVL_DEFAULT_MAX_BYTES ((int64_t)16 << 30)
#define OVL_DEFAULT_MAX_RATIO ((int64_t)1000)
#define OVL_DEFAULT_MAX_ENTRIES ((int64_t)10000000)

/* layers/<id>.json, written (durably) just before layers/<id>/ is renamed into place:
   {"diffID":"sha256:..","blob":"sha256:..","mediaType":"..","compressedSize":N,"size":N,"files":N,
    "unpackSeconds":S}   (size = uncompressed bytes, files = tar entries) */

#endif
