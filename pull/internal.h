/* Private interfaces of pull/: protocol structs parsed once from JSON, auth, the HTTP client, progress. */
#ifndef QIMG_PULL_INTERNAL_H
#define QIMG_PULL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "pull.h"

/* ---- media types ---- */
#define MT_OCI_INDEX             "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST          "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST           "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST       "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_SCHEMA1        "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_CONFIG            "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG         "application/vnd.docker.container.image.v1+json"

/* ---- limits on what a registry may send ---- */
#define MANIFEST_MAX   (4 << 20)  /* bytes of one manifest or index */
#define CONFIG_MAX     (16 << 20) /* bytes of one image config */
#define TOKEN_MAX      (1 << 20)  /* bytes of a token endpoint's answer */
#define AUTHFILE_MAX   (4 << 20)  /* bytes of a credentials file */
#define JSON_MAX_DEPTH 64         /* nesting of arrays/objects in any JSON we parse */
#define LAYERS_MAX     500        /* layers of one image (overlay stacks at most ~500 lowers) */
#define INDEX_MAX      4096       /* entries of one index */

/* ---- manifest.c: JSON at the edge ---- */

struct platform {
	char *os, *arch, *variant; /* normalised: "linux", "amd64"/"arm64"/"arm", variant "" when none */
};

struct descriptor {
	char *media_type;
	char digest[DIGEST_LEN + 1]; /* always store_digest_valid() */
	int64_t size;
	bool has_platform;
	struct platform platform; /* index entries only */
};

struct manifest {
	char *media_type; /* MT_OCI_MANIFEST or MT_DOCKER_MANIFEST */
	struct descriptor config;
	struct descriptor *layers; /* bottom first */
	size_t nlayers;
};

struct index {
	char *media_type; /* MT_OCI_INDEX or MT_DOCKER_LIST */
	struct descriptor *manifests;
	size_t n;
};

struct image_config {
	struct platform platform;
	char *created;
	struct strv env, entrypoint, cmd;
	bool has_entrypoint, has_cmd;
	char *workdir, *user, *stop_signal;
	struct strv diff_ids; /* each store_digest_valid() */
};

enum manifest_kind { MANIFEST_IMAGE, MANIFEST_INDEX };

/* Parse a manifest or an index. content_type is the response's Content-Type (may be NULL); schema 1 refused.
   Fills *m (kind MANIFEST_IMAGE) or *ix (MANIFEST_INDEX). */
int manifest_parse(const char *data, size_t len, const char *content_type, enum manifest_kind *kind, struct manifest *m,
                   struct index *ix, struct qerr *err);
void manifest_free(struct manifest *m);
void index_free(struct index *ix);
int image_config_parse(const char *data, size_t len, struct image_config *c, struct qerr *err);
void image_config_free(struct image_config *c);
/* True for the layer media types the unpacker handles (tar, tar+gzip, tar+zstd; OCI and Docker names). */
bool layer_media_type_ok(const char *mt);
/* The first error of a registry's JSON error body as "CODE: message" (caller frees), or NULL. */
char *registry_error_message(const char *data, size_t len);
/* Parse data as one JSON object (depth-bounded, duplicate keys refused); NULL with err "<what>: ...".
   Only manifest.c and auth.c touch JSON. */
struct json_t *pjson_parse_object(const char *data, size_t len, const char *what, struct qerr *err);
/* True when nesting of arrays/objects in data stays within max (checked before handing data to jansson). */
bool json_depth_ok(const char *data, size_t len, int max);
/* A copy of untrusted s safe to put in a message: at most max chars, non-printables as '?'. Caller frees. */
char *printable(const char *s, size_t max);

/* "os/arch[/variant]" -> normalised platform; aliases x86_64, aarch64, armhf ... accepted. */
int platform_parse(const char *s, struct platform *p, struct qerr *err);
/* The machine we run on (uname). */
void platform_host(struct platform *p);
/* Normalise os/arch/variant strings as found in JSON (copies). */
void platform_set(struct platform *p, const char *os, const char *arch, const char *variant);
char *platform_string(const struct platform *p); /* caller frees */
void platform_free(struct platform *p);
bool platform_match(const struct platform *want, const struct platform *have);
/* The index entry for want; NULL with err naming what the index offers. */
const struct descriptor *index_select(const struct index *ix, const struct platform *want, struct qerr *err);

/* ---- auth.c ---- */

enum auth_scheme { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct auth_challenge {
	enum auth_scheme scheme;
	char *realm, *service, *scope; /* NULL when absent */
};
/* Parse a WWW-Authenticate value (possibly several challenges); Bearer preferred over Basic. */
int wwwauth_parse(const char *hdr, struct auth_challenge *c, struct qerr *err);
void auth_challenge_free(struct auth_challenge *c);

struct credentials {
	char *user, *pass;
	char *identity_token; /* an OAuth2 refresh token (docker's "identitytoken", a helper's "<token>" user) */
	char *source; /* the file they came from */
};
/* Look up domain[/path] in the text of an auth.json: 1 found, 0 none, -1 error. */
int authfile_parse(const char *json, size_t len, const char *domain, const char *path, struct credentials *c,
                   struct qerr *err);
/* Ask registries.conf's credential-helpers in order; "containers-auth.json" (the default, alone) searches the
   credential files (auth_file, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
   ~/.config/containers/auth.json, ~/.docker/config.json): 1 found, 0 none, -1 error. */
int auth_creds_find(const char *auth_file, const char *domain, const char *path, struct credentials *c, struct qerr *err);
void credentials_free(struct credentials *c);
/* The value of an "Authorization: Basic" header for c (caller frees). */
char *basic_auth_value(const struct credentials *c);
/* The token in a token endpoint's JSON answer ("token" or "access_token"); caller frees. */
int token_parse(const char *json, size_t len, char **token, struct qerr *err);

/* ---- registry.c: the HTTP client ---- */

struct registry;

struct registry *registry_new(const struct image_ref *ref, const struct pull_opts *o, struct qerr *err);
void registry_free(struct registry *r);

struct http_resp {
	struct buf body;
	char *content_type;  /* may be NULL */
	char *docker_digest; /* Docker-Content-Digest, may be NULL */
};
void http_resp_free(struct http_resp *resp);
/* GET /v2/<repo>/manifests/<reference> (bounded by MANIFEST_MAX). */
int registry_get_manifest(struct registry *r, const char *reference, struct http_resp *resp, struct qerr *err);

/* Where a blob's bytes go (implemented by pull.c). */
struct blob_sink {
	void *ctx;
	int64_t (*held)(void *ctx);                  /* bytes held: a Range GET resumes after them */
	int (*restart)(void *ctx, struct qerr *err); /* drop what is held (server ignored Range) */
	int (*write)(void *ctx, const void *data, size_t n, struct qerr *err);
	int (*done)(void *ctx, struct qerr *err); /* 0 committed, 1 fetch again from 0, -1 error */
};
struct blob_fetch {
	const char *digest;
	struct blob_sink sink;
};
/* GET the blobs, at most parallel at once; tick(tick_ctx) is called a few times a second. On error the other
   transfers are stopped (their sinks keep what they hold). */
int registry_get_blobs(struct registry *r, struct blob_fetch *f, size_t n, int parallel, void (*tick)(void *),
                       void *tick_ctx, struct qerr *err);

/* ---- progress.c: per-blob lines redrawn in place on a terminal ---- */

struct progress;
struct progress *progress_new(bool on);
void progress_free(struct progress *p);
/* A new line "<what> <short digest>"; returns its id. */
size_t progress_add(struct progress *p, const char *what, const char *digest, int64_t total);
void progress_bytes(struct progress *p, size_t id, int64_t done);
/* A final word for the line ("done", "already exists", ...); s must outlive p. */
void progress_state(struct progress *p, size_t id, const char *s);
/* A plain line of text above the blob lines. */
void progress_note(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Redraw (at most ~10 times a second unless force). */
void progress_draw(struct progress *p, bool force);

/* ---- pull.c: publishing an image whose blobs are already stored (used by load.c) ---- */

/* Parse the stored manifest's config, unpack its layers, write the run spec (no ref; the caller holds the store
   lock shared and sets refs). index_digest may be NULL; platform (may be NULL) is the index entry's. */
int pull_publish_stored(struct store *st, const char *manifest_digest, const char *index_digest,
                        const struct platform *platform, const struct ovl_unpack_limits *lim,
                        struct image_spec *spec_out, struct qerr *err);

/* ---- login.c: credential helpers; registry.c: the login check ---- */

/* `docker-credential-NAME get` for domain: 1 found (c filled, source "docker-credential-NAME"), 0 the helper has
   none, -1 error (helper missing, failed, or answered nonsense). */
int credhelper_get(const char *name, const char *domain, struct credentials *c, struct qerr *err);
/* The credential helper an auth file's text names for domain (credHelpers[domain], else credsStore), or NULL.
   Caller frees. */
char *authfile_helper(const char *json, size_t len, const char *domain);
/* GET /v2/ with c's credentials through the registry's auth flow: 0 when the registry accepts them. */
int registry_check_login(struct registry *r, const struct credentials *c, struct qerr *err);

/* ---- toml.c: the TOML subset of registries.conf files, as a tree (plain C) ---- */

enum tkind { TK_TABLE, TK_ARRAY, TK_STR, TK_BOOL };
/* How a table or array came to be: TOML forbids defining a table twice and extending an inline one. */
enum thow { TH_IMPLICIT, TH_HEADER, TH_DOTTED, TH_INLINE, TH_AOT, TH_VALUE };

struct tnode {
	enum tkind kind;
	enum thow how;
	char *key; /* in its table; NULL for an array element */
	int line;  /* where it was defined */
	char *str;
	bool b;
	struct tnode **kids; /* a table's members, an array's elements */
	size_t n;
};
/* text into a tree (its root table; toml_free frees it), or NULL with "PATH:LINE: why" in err. */
struct tnode *toml_parse(const char *text, const char *path, struct qerr *err);
void toml_free(struct tnode *n);
/* t's member named key, or NULL. */
struct tnode *toml_get(const struct tnode *t, const char *key);

/* ---- registries.c: registries.conf (containers-registries.conf(5) v2 and v1, and .conf.d; plain C) ---- */

#define REGCONF_SYSTEM                "/etc/qimg/registries.conf"
#define CONTAINERS_REGISTRIES_CONF    "/etc/containers/registries.conf"
#define CONTAINERS_REGISTRIES_CONF_D  "/etc/containers/registries.conf.d"
#define SHORT_NAME_ALIASES_ROOT       "/var/cache/containers/short-name-aliases.conf"
#define REGCONF_AUTH_FILES            "containers-auth.json" /* in credential-helpers: the auth files */

enum regconf_pfm { PFM_UNSET, PFM_ALL, PFM_DIGEST_ONLY, PFM_TAG_ONLY }; /* a mirror's pull-from-mirror */
enum regconf_snm { SNM_UNSET, SNM_ENFORCING, SNM_PERMISSIVE, SNM_DISABLED }; /* short-name-mode */

struct regconf_mirror {
	char *location; /* host[:port][/path] */
	bool insecure;
	enum regconf_pfm pull_from;
};
struct regconf_registry {
	char *prefix, *location; /* prefix defaults to location; "*.domain" wildcards take no location */
	bool insecure, blocked, mirror_by_digest_only;
	struct regconf_mirror *mirrors;
	size_t nmirrors;
	char *file; /* the file it came from */
	int line;   /* of its [[registry]] header */
};
struct regconf {
	char *path; /* the files read, ", " between them; NULL when there was none */
	struct regconf_registry *regs;
	size_t nregs;
	struct strv search; /* unqualified-search-registries */
	bool search_set;    /* some file set it (maybe to []) */
	char *search_file;
	enum regconf_snm mode; /* SNM_UNSET: podman's default, permissive */
	char *mode_file;
	struct strv cred_helpers; /* credential-helpers; "containers-auth.json" = the auth files */
	bool cred_helpers_set;
	struct strv alias_names, alias_values, alias_files; /* [aliases]; a value "" resets the alias */
};
/* The files read, in order, each merged over the ones before as containers-registries.conf.d(5) says; NULL
   members are skipped. */
struct regconf_files {
	const char *containers;              /* $CONTAINERS_REGISTRIES_CONF: must exist; else user's, else system */
	const char *user, *system;           /* registries.conf: the user's when it exists, else the system's */
	const char *system_dir, *user_dir;   /* registries.conf.d (the system's not when the user's file is read) */
	const char *qimg, *qimg_fallback;    /* qimg's own (the fallback when qimg is missing) */
	bool qimg_must;                      /* qimg must exist ($QIMG_REGISTRIES_CONF) */
	const char *aliases_cache;           /* short-name-aliases.conf: [aliases] over everything else */
};
/* containers' $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf, else
   /etc/containers/registries.conf; the drop-ins of /etc/containers/registries.conf.d (not when the user's file is
   read) and ~/.config/containers/registries.conf.d in lexical order; then qimg's own file ($QIMG_REGISTRIES_CONF,
   which must exist, else $XDG_CONFIG_HOME/qimg/registries.conf (~/.config when unset), else REGCONF_SYSTEM), so
   qimg's wins; then the short-name aliases cache. No file: an empty configuration. Errors name FILE:LINE. */
int regconf_load(struct regconf *rc, struct qerr *err);
int regconf_load_files(const struct regconf_files *f, struct regconf *rc, struct qerr *err);
/* One registries.conf file's text (version 2, or version 1 converted). */
int regconf_parse(const char *text, const char *path, struct regconf *rc, struct qerr *err);
void regconf_free(struct regconf *rc);
/* src's settings over dst's (src is consumed and left empty), as containers-registries.conf.d(5) merges files. */
void regconf_merge(struct regconf *dst, struct regconf *src);
/* The [[registry]] whose prefix matches name ("domain/path", or a bare host) most specifically, or NULL. */
const struct regconf_registry *regconf_find(const struct regconf *rc, const char *name);
/* True when ref has no registry host (no '.', ':' or "localhost" before the first '/'). */
bool regconf_is_short(const char *ref);

/* The qualified references refstr stands for, appended to out: its alias, else each unqualified-search registry
   (else, when no file sets that list, refstr itself, which ref_parse puts on docker.io); a qualified refstr stands
   for itself. */
void regconf_candidates(const struct regconf *rc, const char *refstr, struct strv *out);

/* Whether podman would ask which of names (regconf_candidates of refstr) to pull: a short name without alias that
   stands for more than one, short-name-mode enforcing or permissive. */
bool regconf_ambiguous(const struct regconf *rc, const char *refstr, const struct strv *names);
/* Record short_name (tag and digest dropped) as an alias of full's name in the short-name aliases cache, as podman
   records the user's pick. */
int regconf_alias_record(const char *short_name, const char *full, struct qerr *err);
/* The names a local image refstr may be stored under, in podman's order: its alias, else each unqualified-search
   registry's, then docker.io's; a qualified refstr is itself. */
void regconf_local_names(const struct regconf *rc, const char *refstr, struct strv *out);

/* One place a pull tries. */
struct pull_source {
	char *ref;                 /* the image's qualified reference, as the store names it */
	struct image_ref endpoint; /* where to fetch it: a mirror or the registry's location */
	bool insecure, mirror;
};
/* Where to pull refstr from, in order: for a short name its alias, else each unqualified-search registry (else
   docker.io; short-name-mode enforcing refuses more than one); for each, its mirrors (as mirror-by-digest-only and
   pull-from-mirror allow), then its location. Blocked registries are left out (error when nothing is left). */
int regconf_sources(const struct regconf *rc, const char *refstr, struct pull_source **out, size_t *n,
                    struct qerr *err);
void pull_sources_free(struct pull_source *v, size_t n);

#endif
