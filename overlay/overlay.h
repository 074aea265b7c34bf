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
	int64_t max_apparent; /* max apparent size (holes included) of a layer's files together; 0 = default */
};
/* l with each zero (or l NULL) field replaced by its default (below). */
struct ovl_unpack_limits ovl_limits_resolve(const struct ovl_unpack_limits *l);

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
   1000:1 once past 1 MiB of output, 10 million tar entries, and an apparent size of the layer's regular files
   (sparse holes counted) of 16 GiB or the layer size limit, whichever is larger: a sparse tar entry can then
   make no file that a dense layer within the size limit could not, so every file stays copyable by tools that
   do not keep holes. */
#define OVL_DEFAULT_MAX_BYTES ((int64_t)16 << 30)
#define OVL_DEFAULT_MAX_RATIO ((int64_t)1000)
#define OVL_DEFAULT_MAX_ENTRIES ((int64_t)10000000)
#define OVL_DEFAULT_MAX_APPARENT ((int64_t)16 << 30)

/* layers/<id>.json, written (durably) just before layers/<id>/ is renamed into place:
   {"diffID":"sha256:..","blob":"sha256:..","mediaType":"..","compressedSize":N,"size":N,"files":N,
    "unpackSeconds":S}   (size = uncompressed bytes, files = tar entries) */

/* libarchive's reason for the last failure of a, never NULL or empty: archive_error_string() is NULL when the
   tar reader stops without setting a message (libarchive 3.6 does so on some damaged headers: bsdtar then
   prints "(null)" too); then a fixed text saying the data is damaged. */
struct archive;
const char *ovl_archive_error(struct archive *a);

/* ---- unpack while downloading (overlay/unpack.c; heavy) ---- */

/* A pool of unpack workers fed one layer at a time; ovl_unpack_layers() is new + add each + finish + free. */
struct ovl_unpacker;
struct ovl_unpacker *ovl_unpacker_new(struct store *st, int workers, const struct ovl_unpack_limits *lim);
/* Queue a layer (skipped when present or already queued); workers start as slots free up. blob_fd < 0: the
   blob is in the store. blob_fd >= 0: a readable fd of the blob's file while it is still being downloaded (size
   bytes once complete; the unpacker keeps a dup): the worker extracts the bytes as they arrive and publishes
   the layer only after ovl_unpacker_blob_done(blob, true). Every such blob must get a blob_done. */
int ovl_unpacker_add(struct ovl_unpacker *u, const struct ovl_layer_job *job, int blob_fd, int64_t size,
                     struct qerr *err);
/* The download of blob_digest ended: verified and stored (ok), or not (then the unpacker fails). */
void ovl_unpacker_blob_done(struct ovl_unpacker *u, const char *blob_digest, bool ok);
/* The download of blob_digest starts over from byte 0: workers reading it start over too. */
void ovl_unpacker_blob_restart(struct ovl_unpacker *u, const char *blob_digest);
/* Reap finished workers and start queued jobs, waiting at most timeout_ms (0: never, -1: until one ends).
   -1 when a layer failed (err; the other workers are stopped). */
int ovl_unpacker_poll(struct ovl_unpacker *u, int timeout_ms, struct qerr *err);
/* Wait until every queued layer is unpacked (or one fails: -1). */
int ovl_unpacker_finish(struct ovl_unpacker *u, struct qerr *err);
/* Stop whatever still runs (no partial layer is left), free. NULL is fine. */
void ovl_unpacker_free(struct ovl_unpacker *u);

#endif
