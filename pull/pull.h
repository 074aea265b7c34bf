/* Image references and the registry v2 client: pull an image into the store. */
#ifndef QIMG_PULL_H
#define QIMG_PULL_H

#include <stdbool.h>
#include "../overlay/overlay.h"
#include "../store/store.h"

/* A parsed, normalised image reference (pull/ref.c: plain C, linked into the light binary too). */
struct image_ref {
	char *domain; /* "docker.io", "ghcr.io", "localhost:5000" */
	char *path;   /* "library/ubuntu" */
	char *tag;    /* "latest" when neither tag nor digest was given; NULL when only a digest was given */
	char *digest; /* "sha256:<hex>" or NULL */
};
int ref_parse(const char *s, struct image_ref *ref, struct qerr *err);
void ref_free(struct image_ref *ref);
/* "domain/path" (caller frees). */
char *ref_name(const struct image_ref *ref);
/* "domain/path:tag", "domain/path@digest" or "domain/path:tag@digest" (caller frees). */
char *ref_string(const struct image_ref *ref);
/* The host[:port] to talk to: "registry-1.docker.io" for docker.io, else the domain. */
const char *ref_endpoint(const struct image_ref *ref);
/* The store key: the digest when given, else the tag. */
const char *ref_key(const struct image_ref *ref);

/* The references a local lookup of refstr tries, in order (appended to out), resolved as a pull resolves it
   through registries.conf (pull/registries.c, plain C): a qualified reference stands for itself; a short name
   for its alias, else each unqualified-search registry's name for it, then docker.io's. */
int pull_local_names(const char *refstr, struct strv *out, struct qerr *err);

struct pull_opts {
	const char *platform;   /* "os/arch[/variant]"; NULL = the host's */
	bool tls_verify_off;    /* --tls-verify=false: plain HTTP or unverified TLS allowed for this pull */
	bool quiet;             /* -q: no progress, only the digest at the end */
	bool progress;          /* draw progress (set by cmd/ when stderr is a TTY and !quiet) */
	int max_parallel;       /* concurrent blob downloads; 0 = default */
	const char *auth_file;  /* override of the credentials file; NULL = the usual search */
	const char *certs_dir;  /* override of the certs.d search (tests); NULL = the usual search */
	struct ovl_unpack_limits limits; /* bomb limits for unpacking; zero fields = the defaults */
	/* Set by cmd/ on a terminal: asked which of names a short name means when short-name-mode lets podman ask
	   (enforcing, permissive); the index picked, or -1 with err filled. The pick is recorded as an alias. */
	int (*choose)(const char *short_name, const struct strv *names, struct qerr *err);
};

/* Pull ref into st: resolve, download and verify blobs, unpack layers, write spec and ref.
   On success *spec_out (optional) is filled. On failure the store holds nothing new but verified blobs. */
int pull_image(struct store *st, const char *ref, const struct pull_opts *o, struct image_spec *spec_out,
	       struct qerr *err);

/* ---- offline images (pull/load.c, pull/save.c) ---- */

/* Load the images of input: a docker-archive (docker save), an OCI layout directory, or a tar of one
   (oci-archive; compressed tars too). Every blob is verified against its digest, layers are unpacked, and refs
   are set last (from RepoTags / index annotations; tag overrides them and needs exactly one image; an unnamed
   image becomes localhost/<input's base name>:latest). Each ref set is appended to loaded as "name:tag". lim: the
   unpack limits (NULL: the defaults). */
int load_image(struct store *st, const char *input, const char *tag, const struct ovl_unpack_limits *lim,
               struct strv *loaded, struct qerr *err);

struct save_image {
	const char *manifest_digest;
	const char *name; /* "domain/path:tag" for the index annotations, or NULL */
};
/* Write an oci-archive of the images to fd, or to path (atomically: a tmp file beside it, then rename). */
int save_images(struct store *st, const struct save_image *v, size_t n, int fd, struct qerr *err);
int save_images_file(struct store *st, const struct save_image *v, size_t n, const char *path, struct qerr *err);

/* ---- credentials (pull/login.c) ---- */

struct login_opts {
	bool tls_verify_off;   /* --tls-verify=false */
	const char *certs_dir; /* --certs-dir */
};
/* The file `qimg login` writes: opt, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
   ~/.config/containers/auth.json (*fallback set). NULL when not even $HOME is set. Caller frees. */
char *login_auth_file(const char *opt, bool *fallback);
/* registry as an auth.json key: scheme and trailing "/" dropped, host lowercased, the Hub's names -> docker.io. */
char *login_key(const char *registry);
/* GET /v2/ of registry's host with user/pass through its auth flow (Basic or token): 0 when accepted. */
int login_verify(const char *registry, const char *user, const char *pass, const struct login_opts *o,
                 struct qerr *err);
/* Keep user/pass for registry in file (created 0600, in a 0700 dir when missing; other entries kept). */
int login_store(const char *registry, const char *user, const char *pass, const char *file, struct qerr *err);
/* Remove registry's entries from file (every entry when registry is NULL): 1 removed, 0 none there, -1 error. */
int login_remove(const char *registry, const char *file, struct qerr *err);

#endif
