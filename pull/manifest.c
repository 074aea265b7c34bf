/* Manifests, indexes and image configs: parsed once from JSON into structs; platform selection. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <jansson.h>
#include "internal.h"

char *printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *out = xmalloc(n + 4);

	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	strcpy(out + n, s[n] ? "..." : "");
	return out;
}

bool json_depth_ok(const char *data, size_t len, int max)
{
	int depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char ch = data[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > max)
				return false;
		} else if (ch == ']' || ch == '}') {
			depth--;
		}
	}
	return true;
}

json_t *pjson_parse_object(const char *data, size_t len, const char *what, struct qerr *err)
{
	json_error_t je;
	json_t *j;

	if (!json_depth_ok(data, len, JSON_MAX_DEPTH)) {
		qerr_set(err, "%s: JSON nested deeper than %d levels", what, JSON_MAX_DEPTH);
		return NULL;
	}
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		autofree char *m = printable(je.text, 200);
		qerr_set(err, "%s: invalid JSON at line %d: %s", what, je.line, m);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		qerr_set(err, "%s: JSON is not an object", what);
		return NULL;
	}
	return j;
}

/* *out = copy of string member key (NULL when absent or null); -1 when it has another type or is required. */
static int get_str(json_t *o, const char *key, bool required, char **out, const char *what, struct qerr *err)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return qerr_set(err, "%s: missing \"%s\"", what, key);
		return 0;
	}
	if (!json_is_string(v))
		return qerr_set(err, "%s: \"%s\" is not a string", what, key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

/* Array of strings member key into *out; *present false when absent or null. */
static int get_strv(json_t *o, const char *key, struct strv *out, bool *present, const char *what, struct qerr *err)
{
	json_t *v = json_object_get(o, key), *e;
	size_t i;

	if (present)
		*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return qerr_set(err, "%s: \"%s\" is not an array", what, key);
	for (i = 0; i < json_array_size(v); i++) {
		e = json_array_get(v, i);
		if (!json_is_string(e))
			return qerr_set(err, "%s: \"%s\"[%zu] is not a string", what, key, i);
		strv_push(out, json_string_value(e));
	}
	if (present)
		*present = true;
	return 0;
}

static int descriptor_platform(json_t *j, struct descriptor *d, const char *what, struct qerr *err)
{
	json_t *p = json_object_get(j, "platform");
	autofree char *os = NULL, *arch = NULL, *variant = NULL;

	if (!p || json_is_null(p))
		return 0;
	if (!json_is_object(p))
		return qerr_set(err, "%s: \"platform\" is not an object", what);
	if (get_str(p, "os", true, &os, what, err) < 0 || get_str(p, "architecture", true, &arch, what, err) < 0 ||
	    get_str(p, "variant", false, &variant, what, err) < 0)
		return -1;
	platform_set(&d->platform, os, arch, variant);
	d->has_platform = true;
	return 0;
}

static int descriptor_parse(json_t *j, struct descriptor *d, const char *what, struct qerr *err)
{
	autofree char *digest = NULL;
	json_t *size;

	if (!json_is_object(j))
		return qerr_set(err, "%s: descriptor is not an object", what);
	if (get_str(j, "mediaType", true, &d->media_type, what, err) < 0 ||
	    get_str(j, "digest", true, &digest, what, err) < 0)
		return -1;
	if (!store_digest_valid(digest)) {
		autofree char *m = printable(digest, 80);
		return qerr_set(err, "%s: invalid digest \"%s\" (only sha256:<64 hex> is accepted)", what, m);
	}
	strcpy(d->digest, digest);
	size = json_object_get(j, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return qerr_set(err, "%s: \"size\" missing or not a non-negative integer", what);
	d->size = json_integer_value(size);
	return descriptor_platform(j, d, what, err);
}

static void descriptor_free(struct descriptor *d)
{
	free(d->media_type);
	platform_free(&d->platform);
	memset(d, 0, sizeof(*d));
}

static bool is_schema1(const char *mt)
{
	return mt && (strcmp(mt, MT_DOCKER_SCHEMA1) == 0 || strcmp(mt, MT_DOCKER_SCHEMA1_SIGNED) == 0);
}

static bool is_index_type(const char *mt)
{
	return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool is_manifest_type(const char *mt)
{
	return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

/* Content-Type without parameters, compared case-insensitively. */
static bool ctype_is(const char *ctype, const char *mt)
{
	size_t n = strlen(mt);

	return ctype && strncasecmp(ctype, mt, n) == 0 && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

static int schema1_error(struct qerr *err)
{
	return qerr_set(err, "manifest is Docker schema 1, which qimg does not support (deprecated and unverifiable); "
	                     "push the image again with a current client");
}

static int descriptors_parse(json_t *arr, const char *key, size_t max, struct descriptor **out, size_t *n,
                             struct qerr *err)
{
	json_t *e;
	size_t i;

	if (!json_is_array(arr))
		return qerr_set(err, "manifest: \"%s\" missing or not an array", key);
	if (json_array_size(arr) > max)
		return qerr_set(err, "manifest: more than %zu entries in \"%s\"", max, key);
	*out = xcalloc(json_array_size(arr) + 1, sizeof(**out));
	for (i = 0; i < json_array_size(arr); i++) {
		char what[64];

		e = json_array_get(arr, i);
		snprintf(what, sizeof(what), "manifest: %s[%zu]", key, i);
		*n = i + 1;
		if (descriptor_parse(e, &(*out)[i], what, err) < 0)
			return -1;
	}
	return 0;
}

static int image_manifest_parse(json_t *j, const char *mt, struct manifest *m, struct qerr *err)
{
	json_t *cfg = json_object_get(j, "config");

	m->media_type = xstrdup(mt);
	if (!cfg)
		return qerr_set(err, "manifest: missing \"config\"");
	if (descriptor_parse(cfg, &m->config, "manifest: config", err) < 0)
		return -1;
	if (strcmp(m->config.media_type, MT_OCI_CONFIG) != 0 && strcmp(m->config.media_type, MT_DOCKER_CONFIG) != 0) {
		autofree char *p = printable(m->config.media_type, 100);
		return qerr_set(err, "manifest: not a container image (config media type %s)", p);
	}
	if (m->config.size > CONFIG_MAX)
		return qerr_set(err, "manifest: config of %lld bytes is larger than the %d allowed",
		                (long long)m->config.size, CONFIG_MAX);
	if (descriptors_parse(json_object_get(j, "layers"), "layers", LAYERS_MAX, &m->layers, &m->nlayers, err) < 0)
		return -1;
	if (m->nlayers == 0)
		return qerr_set(err, "manifest: image has no layers");
	for (size_t i = 0; i < m->nlayers; i++) {
		if (!layer_media_type_ok(m->layers[i].media_type)) {
			autofree char *p = printable(m->layers[i].media_type, 100);
			return qerr_set(err, "manifest: layer %zu: unsupported media type %s", i, p);
		}
	}
	return 0;
}

/* Which kind the body is: its mediaType when given (must agree with its shape), else its shape. */
static int manifest_kind_of(json_t *j, const char *content_type, const char **mt, enum manifest_kind *kind,
                            struct qerr *err)
{
	json_t *v = json_object_get(j, "mediaType");
	bool has_manifests = json_object_get(j, "manifests") != NULL;

	*mt = NULL;
	if (v && !json_is_string(v))
		return qerr_set(err, "manifest: \"mediaType\" is not a string");
	if (v)
		*mt = json_string_value(v);
	if (*mt && is_schema1(*mt))
		return schema1_error(err);
	if (*mt && !is_index_type(*mt) && !is_manifest_type(*mt)) {
		autofree char *p = printable(*mt, 100);
		return qerr_set(err, "manifest: unsupported media type %s", p);
	}
	if (*mt && is_index_type(*mt) != has_manifests)
		return qerr_set(err, "manifest: media type %s does not match its content", *mt);
	*kind = has_manifests ? MANIFEST_INDEX : MANIFEST_IMAGE;
	if (!*mt && ctype_is(content_type, MT_DOCKER_LIST))
		*mt = MT_DOCKER_LIST;
	else if (!*mt && ctype_is(content_type, MT_DOCKER_MANIFEST))
		*mt = MT_DOCKER_MANIFEST;
	else if (!*mt)
		*mt = has_manifests ? MT_OCI_INDEX : MT_OCI_MANIFEST;
	return 0;
}

/* The parsed JSON of a manifest or an index into *m or *ix. */
static int manifest_body_parse(json_t *j, const char *content_type, enum manifest_kind *kind, struct manifest *m,
                               struct index *ix, struct qerr *err)
{
	json_t *sv = json_object_get(j, "schemaVersion");
	const char *mt;

	if (json_is_integer(sv) && json_integer_value(sv) == 1)
		return schema1_error(err);
	if (!json_is_integer(sv) || json_integer_value(sv) != 2)
		return qerr_set(err, "manifest: \"schemaVersion\" missing or not 2");
	if (manifest_kind_of(j, content_type, &mt, kind, err) < 0)
		return -1;
	if (*kind == MANIFEST_IMAGE)
		return image_manifest_parse(j, mt, m, err);
	ix->media_type = xstrdup(mt);
	return descriptors_parse(json_object_get(j, "manifests"), "manifests", INDEX_MAX, &ix->manifests, &ix->n, err);
}

int manifest_parse(const char *data, size_t len, const char *content_type, enum manifest_kind *kind, struct manifest *m,
                   struct index *ix, struct qerr *err)
{
	json_t *j;
	int rc;

	memset(m, 0, sizeof(*m));
	memset(ix, 0, sizeof(*ix));
	if (is_schema1(content_type))
		return schema1_error(err);
	j = pjson_parse_object(data, len, "manifest", err);
	if (!j)
		return -1;
	rc = manifest_body_parse(j, content_type, kind, m, ix, err);
	json_decref(j);
	if (rc < 0) {
		manifest_free(m);
		index_free(ix);
	}
	return rc;
}

void manifest_free(struct manifest *m)
{
	free(m->media_type);
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->nlayers; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

void index_free(struct index *ix)
{
	free(ix->media_type);
	for (size_t i = 0; i < ix->n; i++)
		descriptor_free(&ix->manifests[i]);
	free(ix->manifests);
	memset(ix, 0, sizeof(*ix));
}

bool layer_media_type_ok(const char *mt)
{
	static const char *const ok[] = {
	    "application/vnd.oci.image.layer.v1.tar",
	    "application/vnd.oci.image.layer.v1.tar+gzip",
	    "application/vnd.oci.image.layer.v1.tar+zstd",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	    "application/vnd.docker.image.rootfs.diff.tar.gzip",
	    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	    "application/vnd.docker.image.rootfs.diff.tar.zstd",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(mt, ok[i]) == 0)
			return true;
	return false;
}

static int config_rootfs(json_t *j, struct image_config *c, struct qerr *err)
{
	json_t *rootfs = json_object_get(j, "rootfs");
	bool present;

	if (!json_is_object(rootfs))
		return qerr_set(err, "image config: \"rootfs\" missing or not an object");
	if (get_strv(rootfs, "diff_ids", &c->diff_ids, &present, "image config: rootfs", err) < 0)
		return -1;
	if (!present)
		return qerr_set(err, "image config: rootfs has no \"diff_ids\"");
	for (size_t i = 0; i < c->diff_ids.n; i++) {
		if (!store_digest_valid(c->diff_ids.v[i])) {
			autofree char *p = printable(c->diff_ids.v[i], 80);
			return qerr_set(err, "image config: rootfs.diff_ids[%zu]: invalid digest \"%s\"", i, p);
		}
	}
	return 0;
}

static int config_runtime(json_t *j, struct image_config *c, struct qerr *err)
{
	json_t *cfg = json_object_get(j, "config");
	const char *w = "image config: config";

	if (!cfg || json_is_null(cfg))
		return 0;
	if (!json_is_object(cfg))
		return qerr_set(err, "image config: \"config\" is not an object");
	if (get_strv(cfg, "Env", &c->env, NULL, w, err) < 0 ||
	    get_strv(cfg, "Entrypoint", &c->entrypoint, &c->has_entrypoint, w, err) < 0 ||
	    get_strv(cfg, "Cmd", &c->cmd, &c->has_cmd, w, err) < 0 ||
	    get_str(cfg, "WorkingDir", false, &c->workdir, w, err) < 0 ||
	    get_str(cfg, "User", false, &c->user, w, err) < 0 ||
	    get_str(cfg, "StopSignal", false, &c->stop_signal, w, err) < 0)
		return -1;
	return 0;
}

static int config_platform(json_t *j, struct image_config *c, struct qerr *err)
{
	autofree char *os = NULL, *arch = NULL, *variant = NULL;

	if (get_str(j, "os", false, &os, "image config", err) < 0 ||
	    get_str(j, "architecture", false, &arch, "image config", err) < 0 ||
	    get_str(j, "variant", false, &variant, "image config", err) < 0)
		return -1;
	platform_set(&c->platform, os ? os : "", arch ? arch : "", variant);
	return 0;
}

int image_config_parse(const char *data, size_t len, struct image_config *c, struct qerr *err)
{
	json_t *j;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	j = pjson_parse_object(data, len, "image config", err);
	if (!j)
		return -1;
	if (config_platform(j, c, err) == 0 && get_str(j, "created", false, &c->created, "image config", err) == 0 &&
	    config_runtime(j, c, err) == 0 && config_rootfs(j, c, err) == 0)
		rc = 0;
	json_decref(j);
	if (rc < 0)
		image_config_free(c);
	return rc;
}

void image_config_free(struct image_config *c)
{
	platform_free(&c->platform);
	free(c->created);
	strv_free(&c->env);
	strv_free(&c->entrypoint);
	strv_free(&c->cmd);
	free(c->workdir);
	free(c->user);
	free(c->stop_signal);
	strv_free(&c->diff_ids);
	memset(c, 0, sizeof(*c));
}

char *registry_error_message(const char *data, size_t len)
{
	json_t *j, *e;
	const char *code, *msg;
	char *out = NULL;

	if (len == 0 || !json_depth_ok(data, len, JSON_MAX_DEPTH))
		return NULL;
	j = json_loadb(data, len, 0, NULL);
	if (!j)
		return NULL;
	e = json_array_get(json_object_get(j, "errors"), 0);
	code = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	if (code || msg) {
		autofree char *pc = printable(code ? code : "", 60), *pm = printable(msg ? msg : "", 200);
		out = xasprintf("%s%s%s", pc, code && msg ? ": " : "", pm);
	}
	json_decref(j);
	return out;
}

/* ---- platforms ---- */

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s ? s : "");

	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

void platform_set(struct platform *p, const char *os, const char *arch, const char *variant)
{
	static const struct {
		const char *alias, *arch, *variant;
	} map[] = {
	    {"x86_64", "amd64", NULL}, {"x86-64", "amd64", NULL}, {"aarch64", "arm64", NULL},
	    {"armhf", "arm", "v7"},    {"armel", "arm", "v6"},    {"armv7l", "arm", "v7"},
	    {"armv6l", "arm", "v6"},   {"i386", "386", NULL},     {"i686", "386", NULL},
	};

	platform_free(p);
	p->os = lower_dup(os);
	p->arch = lower_dup(arch);
	p->variant = lower_dup(variant);
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(p->arch, map[i].alias) == 0) {
			free(p->arch);
			p->arch = xstrdup(map[i].arch);
			if (map[i].variant && !*p->variant) {
				free(p->variant);
				p->variant = xstrdup(map[i].variant);
			}
		}
	}
	if (strcmp(p->os, "macos") == 0) {
		free(p->os);
		p->os = xstrdup("darwin");
	}
	/* As containerd normalises: arm64 "v8" is the only arm64; a bare arm means v7; amd64 v1 is amd64. */
	if ((strcmp(p->arch, "arm64") == 0 && strcmp(p->variant, "v8") == 0) ||
	    (strcmp(p->arch, "amd64") == 0 && strcmp(p->variant, "v1") == 0))
		p->variant[0] = '\0';
	if (strcmp(p->arch, "arm") == 0 && !*p->variant) {
		free(p->variant);
		p->variant = xstrdup("v7");
	}
}

static bool platform_word_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

int platform_parse(const char *s, struct platform *p, struct qerr *err)
{
	autofree char *copy = xstrdup(s);
	char *parts[3] = {NULL, NULL, NULL}, *save = NULL;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == 3 || !platform_word_ok(t))
			return qerr_set(err, "invalid platform \"%s\" (expected os/arch[/variant], e.g. linux/arm64)",
			                s);
		parts[n++] = t;
	}
	if (n < 2 || s[0] == '/' || strchr(s, '\0')[-1] == '/' || strstr(s, "//"))
		return qerr_set(err, "invalid platform \"%s\" (expected os/arch[/variant], e.g. linux/arm64)", s);
	platform_set(p, parts[0], parts[1], parts[2]);
	return 0;
}

void platform_host(struct platform *p)
{
	struct utsname u;

	memset(p, 0, sizeof(*p));
	if (uname(&u) < 0)
		strcpy(u.machine, "amd64");
	platform_set(p, "linux", u.machine, NULL);
	/* uname says armv7l/armv6l, already mapped; armv8l is a 32-bit arm kernel on v8 hardware: v7 userland. */
	if (strcmp(u.machine, "armv8l") == 0)
		platform_set(p, "linux", "arm", "v7");
}

char *platform_string(const struct platform *p)
{
	if (p->variant && *p->variant)
		return xasprintf("%s/%s/%s", p->os, p->arch, p->variant);
	return xasprintf("%s/%s", p->os, p->arch);
}

void platform_free(struct platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
	memset(p, 0, sizeof(*p));
}

bool platform_match(const struct platform *want, const struct platform *have)
{
	return have->os && strcmp(want->os, have->os) == 0 && strcmp(want->arch, have->arch) == 0 &&
	       strcmp(want->variant, have->variant) == 0;
}

static bool index_entry_is_image(const struct descriptor *d)
{
	return d->has_platform && strcmp(d->platform.os, "unknown") != 0 &&
	       (is_manifest_type(d->media_type) || is_index_type(d->media_type));
}

const struct descriptor *index_select(const struct index *ix, const struct platform *want, struct qerr *err)
{
	struct buf offers = {0};
	autofree char *w = platform_string(want);

	for (size_t i = 0; i < ix->n; i++) {
		const struct descriptor *d = &ix->manifests[i];

		if (index_entry_is_image(d) && platform_match(want, &d->platform))
			return d;
	}
	for (size_t i = 0; i < ix->n; i++) {
		const struct descriptor *d = &ix->manifests[i];
		autofree char *s = NULL, *ps = NULL;

		if (!index_entry_is_image(d))
			continue;
		s = platform_string(&d->platform);
		ps = printable(s, 60);
		buf_printf(&offers, "%s%s", offers.len ? ", " : "", ps);
	}
	qerr_set(err, "no image for platform %s in the index; it offers: %s", w, offers.len ? offers.p : "nothing");
	buf_free(&offers);
	return NULL;
}
