/* The on-disk store: root resolution, content-addressed blobs, image refs, run specs, unpacked layers, locks. */
#ifndef QIMG_STORE_H
#define QIMG_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include "../lib/util.h"

/*
 * Layout below the root (DESIGN.md §2):
 *   blobs/sha256/<hex>         verified blobs, mode 0444
 *   layers/<id>/               unpacked layer (overlay format); <id> = hex of the layer's diffID
 *   layers/<id>.json           layer metadata (diffID, sizes, unpack time)
 *   images/<escaped-name>/<tag | sha256:hex>   -> "sha256:<manifest hex>\n"
 *   specs/<manifest hex>       the run spec: everything `run` needs, in a plain line format (no JSON on the run path)
 *   tmp/                       in-progress work, named <what>-<pid>-<random>
 *   runs/<name>/               kept uppers (--keep)
 *   live/slot-N                run records, each flock'ed by one live run's qimg (run/record.c; ps, kill)
 *   locks/                     flock files
 *   layers/<id>.idmap          symlink whose target is the uid/gid map the layer was unpacked for
 */

struct store {
	char *root;     /* absolute path */
	int rootfd;     /* O_PATH|O_DIRECTORY fd of root */
	bool rootless;  /* euid != 0: layers are owned by mapped (sub)ids */
};

#define DIGEST_HEX_LEN 64
#define DIGEST_LEN (7 + DIGEST_HEX_LEN) /* "sha256:" + hex */

/* Root from (in order) opt, $QIMG_STORE, $XDG_DATA_HOME/qimg, ~/.local/share/qimg; /var/lib/qimg for root. Caller frees. */
char *store_default_root(const char *opt);
/* Open (creating the layout if needed). */
int store_open(struct store *st, const char *root_opt, struct qerr *err);
void store_close(struct store *st);

/* "sha256:" followed by exactly 64 lowercase hex digits; anything else is refused (no traversal via digests). */
bool store_digest_valid(const char *digest);
/* Pointer to the hex part of a valid digest. */
const char *store_digest_hex(const char *digest);

/* Blobs. */
bool store_blob_exists(struct store *st, const char *digest);
/* Relative path "blobs/sha256/<hex>" (caller frees); digest must be valid. */
char *store_blob_relpath(const char *digest);
int store_blob_open(struct store *st, const char *digest, struct qerr *err); /* O_RDONLY|O_CLOEXEC */
char *store_blob_read(struct store *st, const char *digest, size_t max, size_t *len, struct qerr *err);
/* tmp/stale-<pid>-<rand>: a layer unpacked for an id map the user no longer has, moved aside (gc removes it). */
#define STORE_TMP_STALE "stale-"
/* Create a temp file in tmp/ (mode 0600); *name_out gets its name relative to tmp/ (caller frees). */
int store_tmp_file(struct store *st, const char *what, char **name_out, struct qerr *err);
/* Create a temp dir in tmp/; *name_out relative to tmp/. */
int store_tmp_dir(struct store *st, const char *what, char **name_out, struct qerr *err);
/* Publish tmp/<tmpname> as blobs/sha256/<hex>: fsync, chmod 0444, rename. The caller has verified the digest. */
int store_blob_commit(struct store *st, int fd, const char *tmpname, const char *digest, struct qerr *err);

/* Image refs. name is a normalised repository name ("docker.io/library/ubuntu"); key is a tag or a digest. */
int store_ref_set(struct store *st, const char *name, const char *key, const char *manifest_digest, struct qerr *err);
/* Returns the manifest digest (caller frees) or NULL with err set ("image not found: NAME:TAG"). */
char *store_ref_get(struct store *st, const char *name, const char *key, struct qerr *err);
int store_ref_remove(struct store *st, const char *name, const char *key, struct qerr *err);
struct store_ref {
	char *name, *key, *digest;
};
int store_refs_list(struct store *st, struct store_ref **out, size_t *n, struct qerr *err);
/* The same for gc, which must not miss one: a ref, repository directory or name file that cannot be read or
   parsed is an error naming it (relative to the root); only what a concurrent rmi removed is skipped. */
int store_refs_list_strict(struct store *st, struct store_ref **out, size_t *n, struct qerr *err);
void store_refs_free(struct store_ref *refs, size_t n);

/* The run spec of one image (one manifest). */
struct image_spec {
	char *manifest_digest;
	char *config_digest;
	char *platform;        /* os/arch[/variant] */
	char *created;         /* from the config, may be NULL */
	int64_t size;          /* sum of compressed layer sizes + config */
	struct strv layers;    /* layer ids, bottom (first applied) first */
	struct strv blobs;     /* every blob digest the image needs besides manifest and config (layers, index): gc roots */
	struct strv env;       /* K=V */
	struct strv entrypoint;
	bool has_entrypoint;   /* false when the config had none (null) */
	struct strv cmd;
	bool has_cmd;
	char *workdir;         /* may be NULL */
	char *user;            /* may be NULL */
	char *stop_signal;     /* may be NULL */
};
/* A run holds a shared lock on its image ("image", manifest hex) for its whole life: gc's lease. */
int store_spec_write(struct store *st, const struct image_spec *spec, struct qerr *err);
int store_spec_read(struct store *st, const char *manifest_digest, struct image_spec *spec, struct qerr *err);
void store_spec_free(struct image_spec *spec);

/* A run's lease on its image: a shared lock held for the run's life (taken under the shared store lock, right
   after resolving the image); touches the spec now and then (its mtime is the image's last use). Returns the fd. */
int store_image_lease_take(struct store *st, const char *manifest_digest, struct qerr *err);
/* gc's side: 1 some run holds the lease of image hex, 0 none, -1 error (a lease that cannot be tested is not free). */
int store_image_lease_held(struct store *st, const char *hex, struct qerr *err);

/* Kept containers (run --keep NAME): runs/NAME/image names the manifest digest the container was made from.
   get: 1 read (*digest, caller frees), 0 no record (err->code ENOENT), -1 error (err->code EBADMSG: it holds no
   digest). runs/NAME is opened without following a symlink. */
/* runs/NAME opened O_PATH without following a symlink (err->code ENOENT: no such container). */
int store_kept_dir(struct store *st, const char *name, struct qerr *err);
int store_kept_image_get(struct store *st, const char *name, char **digest, struct qerr *err);
int store_kept_image_set(struct store *st, const char *name, const char *digest, struct qerr *err);

/* Unpacked layers. */
bool store_layer_exists(struct store *st, const char *layer_id);
/* A side file of a layer in layers/ (<id>.json, its completion record; <id>.idmap): true, *idlen = the id's length.
   Anything else there is a layer directory. */
bool store_layer_sidefile(const char *name, size_t *idlen);
/* Present and unpacked for map (store_layer_idmap_check); a layer for another map is not current. */
bool store_layer_current(struct store *st, const char *layer_id, const char *map);
char *store_layer_path(struct store *st, const char *layer_id); /* absolute; caller frees */
/* The uid/gid map a layer's files are owned for ("u0:1000:1,1:100000:65536 g..."), kept as the target of the
   symlink layers/<id>.idmap: one readlinkat on the run path. Written before the layer is published. */
int store_layer_idmap_set(struct store *st, const char *layer_id, const char *map, struct qerr *err);
/* 1: unpacked for map (or a layer from before these records: taken as such); 0: for another map, copied into
   have (size bytes); -1: error. */
int store_layer_idmap_check(struct store *st, const char *layer_id, const char *map, char *have, size_t size,
                            struct qerr *err);

/* Every name in directory rel (relative to the root) but "." and ".."; any failure, ENOENT too, is -1 with
   err->code set and err naming rel. */
int store_dir_list(struct store *st, const char *rel, struct strv *out, struct qerr *err);

/* Locks (flock on files under locks/). Returned fds are released by close(). */
/* The store-wide lock: shared for pull/run/rmi, exclusive for gc's sweep of one object. */
int store_lock(struct store *st, bool exclusive, bool wait, struct qerr *err);
/* A per-object lock, e.g. kind "blob"/"layer"/"image" and the id; -1 with err->code == EWOULDBLOCK when !wait and busy. */
int store_lock_object(struct store *st, const char *kind, const char *id, bool exclusive, bool wait, struct qerr *err);

/* Escape a repository name into one path component (and back). Caller frees. */
char *store_name_escape(const char *name);
char *store_name_unescape(const char *esc);

#endif
