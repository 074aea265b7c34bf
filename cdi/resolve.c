/* The CDI resolver (qimg-pull): spec files (JSON or YAML) from the spec directories, validated strictly (unknown
   fields and a cdiVersion older than the fields used are errors naming file and field), device names resolved into
   one edits plan: each spec's shared edits once, then each device's own. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEC_FILE_MAX  (4u << 20)
#define SPEC_FILES_MAX 1024
#define OFFER_LIST_MAX 20

/* Minor versions as major*100+minor. */
#define V(ma, mi) ((ma)*100 + (mi))
static const int known_versions[] = {V(0, 3), V(0, 4), V(0, 5), V(0, 6), V(0, 7), V(0, 8), V(1, 0), V(1, 1)};

struct dev_def {
	char *name;
	struct cdi_plan edits;
};

struct spec_file {
	char *path;
	size_t dir; /* index in the directory list: higher wins */
	char *kind;
	struct cdi_plan edits; /* the spec's shared containerEdits */
	struct dev_def *devs;
	size_t ndevs;
};

/* Walking one file: where we are (for messages) and the version the fields need. */
struct ctx {
	const char *file;
	char where[256];
	int need;
	char need_field[300];
	struct qerr *err;
};

static void need(struct ctx *c, int v, const char *field)
{
	if (v > c->need) {
		c->need = v;
		snprintf(c->need_field, sizeof c->need_field, "%s%s%s", c->where, *c->where ? "." : "", field);
	}
}

static int bad(struct ctx *c, const char *field, const char *what)
{
	return qerr_set(c->err, "CDI spec %s: %s%s%s: %s", c->file, c->where, *c->where && *field ? "." : "", field,
	                what);
}

/* Every key of o must be one of allowed (NULL-terminated). */
static int only_keys(struct ctx *c, json_t *o, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		const char *const *a = allowed;
		while (*a && strcmp(*a, k))
			a++;
		if (!*a)
			return bad(c, k, "unknown field");
	}
	return 0;
}

static const char *get_str(struct ctx *c, json_t *o, const char *key, bool required, int *rc)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required)
			*rc = bad(c, key, "missing");
		return NULL;
	}
	if (!json_is_string(v)) {
		*rc = bad(c, key, "not a string");
		return NULL;
	}
	return json_string_value(v);
}

/* An integer field in [lo, hi], or -1 when absent. */
static int64_t get_int(struct ctx *c, json_t *o, const char *key, int64_t lo, int64_t hi, int *rc)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		*rc = bad(c, key, "not an integer in range");
		return -1;
	}
	return json_integer_value(v);
}

static int get_strv(struct ctx *c, json_t *o, const char *key, struct strv *out)
{
	json_t *a = json_object_get(o, key), *v;
	size_t i;
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return bad(c, key, "not a list");
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return bad(c, key, "a list element is not a string");
		strv_push(out, json_string_value(v));
	}
	return 0;
}

static bool abs_path(const char *s)
{
	return s && s[0] == '/';
}

static int annotations_check(struct ctx *c, json_t *o)
{
	json_t *a = json_object_get(o, "annotations"), *v;
	const char *k;
	if (!a)
		return 0;
	need(c, V(0, 6), "annotations");
	if (!json_is_object(a))
		return bad(c, "annotations", "not a mapping");
	json_object_foreach(a, k, v)
	{
		if (!json_is_string(v))
			return bad(c, "annotations", "a value is not a string");
	}
	return 0;
}

/* where = saved.key[i] (a message context: a truncated one is still useful) */
static void where_set(struct ctx *c, const char *saved, const char *key, size_t i)
{
	int n = snprintf(c->where, sizeof c->where, "%s%s%s[%zu]", saved, *saved ? "." : "", key, i);
	if (n < 0 || (size_t)n >= sizeof c->where)
		c->where[sizeof c->where - 1] = '\0';
}

/* Run fn on each element of list key, with where extended by key[i]. */
#define FOREACH_ELEM(c, o, key, elem, ...)                                                                             \
	do {                                                                                                           \
		json_t *arr_ = json_object_get(o, key);                                                                \
		size_t i_;                                                                                             \
		char saved_[sizeof(c)->where];                                                                         \
		if (!arr_ || json_is_null(arr_))                                                                       \
			break;                                                                                         \
		if (!json_is_array(arr_))                                                                              \
			return bad(c, key, "not a list");                                                              \
		memcpy(saved_, (c)->where, sizeof saved_);                                                             \
		json_array_foreach(arr_, i_, elem)                                                                     \
		{                                                                                                      \
			where_set(c, saved_, key, i_);                                                                 \
			if (!json_is_object(elem))                                                                     \
				return bad(c, "", "not a mapping");                                                    \
			__VA_ARGS__;                                                                                   \
		}                                                                                                      \
		memcpy((c)->where, saved_, sizeof saved_);                                                             \
	} while (0)

static int device_node(struct ctx *c, json_t *o, struct cdi_plan *p)
{
	static const char *const keys[] = {"path",     "hostPath",    "type", "major", "minor",
	                                   "fileMode", "permissions", "uid",  "gid",   NULL};
	int rc = 0;
	if (only_keys(c, o, keys) < 0)
		return -1;
	const char *path = get_str(c, o, "path", true, &rc), *host = get_str(c, o, "hostPath", false, &rc);
	const char *type = get_str(c, o, "type", false, &rc), *perms = get_str(c, o, "permissions", false, &rc);
	struct cdi_dev d = {0};
	d.major = get_int(c, o, "major", 0, UINT32_MAX, &rc);
	d.minor = get_int(c, o, "minor", 0, UINT32_MAX, &rc);
	d.mode = get_int(c, o, "fileMode", 0, 07777 | 0170000, &rc);
	d.uid = get_int(c, o, "uid", 0, UINT32_MAX - 1, &rc);
	d.gid = get_int(c, o, "gid", 0, UINT32_MAX - 1, &rc);
	if (rc < 0)
		return -1;
	if (!abs_path(path))
		return bad(c, "path", "not an absolute path");
	if (host) {
		need(c, V(0, 5), "hostPath");
		if (!abs_path(host))
			return bad(c, "hostPath", "not an absolute path");
	}
	if (type && (strlen(type) != 1 || !strchr("cbup", type[0])))
		return bad(c, "type", "not one of c, b, u, p");
	if (perms && (strlen(perms) > 3 || perms[strspn(perms, "rwm")]))
		return bad(c, "permissions", "not a subset of rwm");
	d.host = (char *)(host ? host : path);
	d.ctr = (char *)path;
	d.type = type ? type[0] : 0;
	snprintf(d.perms, sizeof d.perms, "%s", perms ? perms : "");
	cdi_plan_add_dev(p, &d);
	return 0;
}

static int mount(struct ctx *c, json_t *o, struct cdi_plan *p)
{
	static const char *const keys[] = {"hostPath", "containerPath", "options", "type", NULL};
	int rc = 0;
	if (only_keys(c, o, keys) < 0)
		return -1;
	struct cdi_mount m = {0};
	m.host = (char *)get_str(c, o, "hostPath", true, &rc);
	m.ctr = (char *)get_str(c, o, "containerPath", true, &rc);
	m.type = (char *)get_str(c, o, "type", false, &rc);
	if (rc < 0)
		return -1;
	if (!abs_path(m.host) || !abs_path(m.ctr))
		return bad(c, abs_path(m.host) ? "containerPath" : "hostPath", "not an absolute path");
	if (m.type)
		need(c, V(0, 4), "type");
	if (get_strv(c, o, "options", &m.opts) < 0) {
		strv_free(&m.opts);
		return -1;
	}
	cdi_plan_add_mount(p, &m);
	strv_free(&m.opts);
	return 0;
}

static int hook(struct ctx *c, json_t *o, struct cdi_plan *p)
{
	static const char *const keys[] = {"hookName", "path", "args", "env", "timeout", NULL};
	int rc = 0;
	if (only_keys(c, o, keys) < 0)
		return -1;
	const char *name = get_str(c, o, "hookName", true, &rc), *path = get_str(c, o, "path", true, &rc);
	int64_t t = get_int(c, o, "timeout", 1, INT32_MAX, &rc);
	if (rc < 0)
		return -1;
	struct cdi_hook h = {.path = (char *)path, .timeout = t < 0 ? 0 : (int)t};
	if (!strcmp(name, "prestart"))
		h.stage = CDI_CREATE_RUNTIME; /* deprecated by OCI: it runs where createRuntime does */
	else if (cdi_stage_parse(name, &h.stage) < 0)
		return bad(c, "hookName",
		           "not an OCI hook stage (createRuntime, createContainer, startContainer, "
		           "poststart, poststop)");
	if (!abs_path(path))
		return bad(c, "path", "not an absolute path");
	if (get_strv(c, o, "args", &h.args) < 0 || get_strv(c, o, "env", &h.env) < 0)
		rc = -1;
	if (rc == 0)
		cdi_plan_add_hook(p, &h);
	strv_free(&h.args);
	strv_free(&h.env);
	return rc;
}

static int gids(struct ctx *c, json_t *o, struct cdi_plan *p)
{
	json_t *a = json_object_get(o, "additionalGids"), *v;
	size_t i;
	if (!a || json_is_null(a))
		return 0;
	need(c, V(0, 7), "additionalGids");
	if (!json_is_array(a))
		return bad(c, "additionalGids", "not a list");
	json_array_foreach(a, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= UINT32_MAX)
			return bad(c, "additionalGids", "an element is not a gid");
		if (json_integer_value(v) == 0)
			continue; /* CDI: gid 0 is ignored */
		p->gids = xrealloc(p->gids, (p->ngids + 1) * sizeof *p->gids);
		p->gids[p->ngids++] = (uint32_t)json_integer_value(v);
	}
	return 0;
}

static int edits(struct ctx *c, json_t *o, struct cdi_plan *p)
{
	static const char *const keys[] = {"env",      "deviceNodes",    "hooks",      "mounts",
	                                   "intelRdt", "additionalGids", "netDevices", NULL};
	json_t *e;
	if (!json_is_object(o))
		return bad(c, "", "not a mapping");
	if (only_keys(c, o, keys) < 0)
		return -1;
	if (json_object_get(o, "intelRdt"))
		return bad(c, "intelRdt", "not supported by qimg (no resctrl)");
	if (json_object_get(o, "netDevices"))
		return bad(c, "netDevices", "not supported by qimg (no network device moves)");
	struct strv env = {0};
	if (get_strv(c, o, "env", &env) < 0) {
		strv_free(&env);
		return -1;
	}
	for (size_t i = 0; i < env.n; i++) {
		if (!strchr(env.v[i], '=') || env.v[i][0] == '=') {
			strv_free(&env);
			return bad(c, "env", "an entry is not KEY=VALUE");
		}
		strv_push(&p->env, env.v[i]);
	}
	strv_free(&env);
	FOREACH_ELEM(c, o, "deviceNodes", e, if (device_node(c, e, p) < 0) return -1);
	FOREACH_ELEM(c, o, "mounts", e, if (mount(c, e, p) < 0) return -1);
	FOREACH_ELEM(c, o, "hooks", e, if (hook(c, e, p) < 0) return -1);
	return gids(c, o, p);
}

static int version_parse(const char *s, int *out)
{
	unsigned ma, mi, pa;
	char tail;
	if (!s || sscanf(s, "%u.%u.%u%c", &ma, &mi, &pa, &tail) != 3 || ma > 99 || mi > 99)
		return -1;
	*out = (int)V(ma, mi);
	for (size_t i = 0; i < sizeof known_versions / sizeof known_versions[0]; i++)
		if (known_versions[i] == *out)
			return 0;
	return -1;
}

static bool kind_ok(const char *k, bool *has_dot_class)
{
	const char *slash = strchr(k, '/');
	autofree char *kind = NULL, *name = NULL;
	struct qerr ignore;
	autofree char *q = xasprintf("%s=x", k);
	if (!slash || cdi_name_parse(q, &kind, &name, &ignore) < 0)
		return false;
	*has_dot_class = strchr(slash + 1, '.') != NULL;
	return true;
}

static void spec_free(struct spec_file *s)
{
	free(s->path);
	free(s->kind);
	cdi_plan_free(&s->edits);
	for (size_t i = 0; i < s->ndevs; i++) {
		free(s->devs[i].name);
		cdi_plan_free(&s->devs[i].edits);
	}
	free(s->devs);
}

static int spec_devices(struct ctx *c, json_t *root, struct spec_file *s)
{
	static const char *const keys[] = {"name", "annotations", "containerEdits", NULL};
	json_t *d;
	json_t *arr = json_object_get(root, "devices");
	if (!arr || !json_is_array(arr) || json_array_size(arr) == 0)
		return bad(c, "devices", arr ? "not a non-empty list" : "missing");
	FOREACH_ELEM(c, root, "devices", d, {
		int rc = 0;
		if (only_keys(c, d, keys) < 0 || annotations_check(c, d) < 0)
			return -1;
		const char *name = get_str(c, d, "name", true, &rc);
		if (rc < 0)
			return -1;
		autofree char *q = xasprintf("%s=%s", s->kind, name), *k = NULL, *n = NULL;
		if (cdi_name_parse(q, &k, &n, c->err) < 0)
			return bad(c, "name", "invalid device name");
		if (name[0] >= '0' && name[0] <= '9')
			need(c, V(0, 5), "name");
		for (size_t j = 0; j < s->ndevs; j++)
			if (!strcmp(s->devs[j].name, name))
				return bad(c, "name", "defined twice in this file");
		json_t *e = json_object_get(d, "containerEdits");
		if (!e)
			return bad(c, "containerEdits", "missing");
		s->devs = xrealloc(s->devs, (s->ndevs + 1) * sizeof *s->devs);
		struct dev_def *dd = &s->devs[s->ndevs++];
		*dd = (struct dev_def){.name = xstrdup(name)};
		size_t l = strlen(c->where);
		if (l + sizeof ".containerEdits" <= sizeof c->where)
			memcpy(c->where + l, ".containerEdits", sizeof ".containerEdits");
		if (edits(c, e, &dd->edits) < 0)
			return -1;
		c->where[l] = '\0';
	});
	return 0;
}

static int spec_parse(json_t *root, struct spec_file *s, struct qerr *err)
{
	static const char *const keys[] = {"cdiVersion", "kind", "annotations", "devices", "containerEdits", NULL};
	struct ctx c = {.file = s->path, .err = err};
	int rc = 0, version;
	if (!json_is_object(root))
		return bad(&c, "", "the document is not a mapping");
	if (only_keys(&c, root, keys) < 0 || annotations_check(&c, root) < 0)
		return -1;
	const char *ver = get_str(&c, root, "cdiVersion", true, &rc), *kind = get_str(&c, root, "kind", true, &rc);
	if (rc < 0)
		return -1;
	if (version_parse(ver, &version) < 0)
		return bad(&c, "cdiVersion", "unsupported version (qimg reads 0.3.0 to 1.1.x)");
	bool dot;
	if (!kind_ok(kind, &dot))
		return bad(&c, "kind", "not VENDOR/CLASS");
	if (dot)
		need(&c, V(0, 6), "kind");
	s->kind = xstrdup(kind);
	json_t *e = json_object_get(root, "containerEdits");
	if (e) {
		snprintf(c.where, sizeof c.where, "containerEdits");
		if (edits(&c, e, &s->edits) < 0)
			return -1;
		c.where[0] = '\0';
	}
	if (spec_devices(&c, root, s) < 0)
		return -1;
	if (c.need > version)
		return qerr_set(err, "CDI spec %s: cdiVersion %s is too old for the fields used (%s needs %d.%d.0)",
		                s->path, ver, c.need_field, c.need / 100, c.need % 100);
	return 0;
}

static int spec_load(int dfd, const char *dir, const char *name, size_t dirno, struct spec_file *s, struct qerr *err)
{
	*s = (struct spec_file){.path = xasprintf("%s/%s", dir, name), .dir = dirno};
	size_t len;
	autofree char *data = read_file_at(dfd, name, SPEC_FILE_MAX, &len, err);
	if (!data)
		return qerr_wrap(err, "CDI spec %s: ", s->path);
	json_t *root;
	size_t nl = strlen(name);
	if (nl > 5 && !strcmp(name + nl - 5, ".json")) {
		json_error_t je;
		root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
		if (!root)
			return qerr_set(err, "CDI spec %s: line %d: %s", s->path, je.line, je.text);
	} else {
		root = cdi_yaml_load(data, len, err);
		if (!root)
			return qerr_wrap(err, "CDI spec %s: ", s->path);
	}
	int rc = spec_parse(root, s, err);
	json_decref(root);
	return rc;
}

static bool spec_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && ((l > 5 && !strcmp(n + l - 5, ".json")) || (l > 5 && !strcmp(n + l - 5, ".yaml")));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The spec files of one directory, by name (a missing directory has none). */
static int dir_load(const char *dir, size_t dirno, struct spec_file **specs, size_t *n, struct qerr *err)
{
	autoclose int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : qerr_sys(err, "CDI spec directory %s", dir);
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		if (dup >= 0)
			close(dup);
		return qerr_sys(err, "CDI spec directory %s", dir);
	}
	struct strv names = {0};
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL && names.n < SPEC_FILES_MAX) {
		struct stat sb;
		if (spec_name(e->d_name) && fstatat(dfd, e->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
			strv_push(&names, e->d_name);
		errno = 0;
	}
	int rc = errno ? qerr_sys(err, "CDI spec directory %s: read", dir) : 0;
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof *names.v, name_cmp);
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		*specs = xrealloc(*specs, (*n + 1) * sizeof **specs);
		rc = spec_load(dfd, dir, names.v[i], dirno, &(*specs)[*n], err);
		(*n)++;
	}
	strv_free(&names);
	return rc;
}

struct found {
	struct spec_file *spec;
	struct dev_def *dev;
};

/* The definition of kind=name that wins: the latest directory's; two files of that directory defining it is a
   conflict. 0 found, 1 not found, -1 conflict. */
static int find_dev(struct spec_file *specs, size_t n, const char *kind, const char *name, struct found *out,
                    struct qerr *err)
{
	*out = (struct found){0};
	for (size_t i = 0; i < n; i++) {
		if (strcmp(specs[i].kind, kind))
			continue;
		for (size_t j = 0; j < specs[i].ndevs; j++) {
			if (strcmp(specs[i].devs[j].name, name))
				continue;
			if (out->spec && out->spec->dir == specs[i].dir)
				return qerr_set(err, "CDI device %s=%s is defined by both %s and %s", kind, name,
				                out->spec->path, specs[i].path);
			if (!out->spec || specs[i].dir > out->spec->dir)
				*out = (struct found){&specs[i], &specs[i].devs[j]};
		}
	}
	return out->spec ? 0 : 1;
}

static void plan_copy_into(struct cdi_plan *to, const struct cdi_plan *from)
{
	for (size_t i = 0; i < from->env.n; i++)
		strv_push(&to->env, from->env.v[i]);
	for (size_t i = 0; i < from->ndevs; i++)
		cdi_plan_add_dev(to, &from->devs[i]);
	for (size_t i = 0; i < from->nmounts; i++)
		cdi_plan_add_mount(to, &from->mounts[i]);
	for (size_t i = 0; i < from->ngids; i++) {
		to->gids = xrealloc(to->gids, (to->ngids + 1) * sizeof *to->gids);
		to->gids[to->ngids++] = from->gids[i];
	}
	for (size_t i = 0; i < from->nhooks; i++)
		cdi_plan_add_hook(to, &from->hooks[i]);
}

static void apply_found(struct found *f, bool *spec_done, struct spec_file *specs, struct cdi_plan *out)
{
	size_t si = (size_t)(f->spec - specs);
	if (!spec_done[si]) {
		spec_done[si] = true;
		plan_copy_into(out, &f->spec->edits);
	}
	plan_copy_into(out, &f->dev->edits);
}

static int unknown_device(struct spec_file *specs, size_t n, const char *dirs, const char *q, struct qerr *err)
{
	struct buf b = {0};
	size_t total = 0;
	struct qerr ignore;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < specs[i].ndevs; j++) {
			struct found f;
			if (find_dev(specs, n, specs[i].kind, specs[i].devs[j].name, &f, &ignore) == 0 &&
			    f.dev != &specs[i].devs[j])
				continue; /* a later directory's definition is listed */
			if (total++ < OFFER_LIST_MAX)
				buf_printf(&b, "%s%s=%s", total > 1 ? ", " : "", specs[i].kind, specs[i].devs[j].name);
		}
	if (total > OFFER_LIST_MAX)
		buf_printf(&b, ", ... (%zu in all)", total);
	if (total)
		qerr_set(err, "unknown CDI device %s; the specs in %s offer: %s", q, dirs, b.p);
	else
		qerr_set(err, "unknown CDI device %s; no CDI spec files in %s (e.g. nvidia-ctk cdi generate)", q, dirs);
	buf_free(&b);
	err->exit_status = 125;
	return -1;
}

/* One requested name into out; "=all" without an "all" device means every device of the kind. */
static int resolve_one(struct spec_file *specs, size_t n, bool *done, const char *dirs, const char *q,
                       struct cdi_plan *out, struct qerr *err)
{
	autofree char *kind = NULL, *name = NULL;
	if (cdi_name_parse(q, &kind, &name, err) < 0)
		return -1;
	struct found f;
	int r = find_dev(specs, n, kind, name, &f, err);
	if (r < 0)
		return -1;
	if (r == 0) {
		apply_found(&f, done, specs, out);
		return 0;
	}
	bool any = false;
	for (size_t i = 0; !strcmp(name, "all") && i < n; i++) {
		if (strcmp(specs[i].kind, kind))
			continue;
		for (size_t j = 0; j < specs[i].ndevs; j++) {
			if (find_dev(specs, n, kind, specs[i].devs[j].name, &f, err) < 0)
				return -1;
			if (f.dev != &specs[i].devs[j])
				continue; /* overridden by a later directory: applied from there */
			apply_found(&f, done, specs, out);
			any = true;
		}
	}
	return any ? 0 : unknown_device(specs, n, dirs, q, err);
}

int cdi_resolve(const char *dirs, char *const *names, size_t n, struct cdi_plan *out, struct qerr *err)
{
	memset(out, 0, sizeof *out);
	if (!dirs)
		dirs = getenv(CDI_SPEC_DIRS_ENV);
	if (!dirs || !*dirs)
		dirs = CDI_SPEC_DIRS_DEFAULT;
	struct spec_file *specs = NULL;
	size_t nspecs = 0, dirno = 0;
	int rc = 0;
	autofree char *copy = xstrdup(dirs);
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); rc == 0 && d; d = strtok_r(NULL, ":", &save))
		rc = dir_load(d, dirno++, &specs, &nspecs, err);
	bool *done = xcalloc(nspecs + 1, sizeof *done);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = resolve_one(specs, nspecs, done, dirs, names[i], out, err);
	free(done);
	for (size_t i = 0; i < nspecs; i++)
		spec_free(&specs[i]);
	free(specs);
	if (rc < 0) {
		cdi_plan_free(out);
		if (!err->exit_status)
			err->exit_status = 125;
	}
	return rc;
}
