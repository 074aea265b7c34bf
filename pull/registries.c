/* registries.conf: containers-registries.conf(5) version 2, every key (and version 1, converted), read from
   containers' files (registries.conf, its registries.conf.d drop-ins, the short-name aliases cache) and qimg's own
   file with podman's merge rules, each file a tree from toml.c read strictly against the format; and the list of
   places a pull tries for one reference: mirrors first, then the registry itself. Plain C (no heavy library): the
   light qimg reads it too. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

#define REGCONF_MAX (1 << 20) /* bytes of one file */
#define DROPIN_MAX  1000      /* *.conf files in one registries.conf.d */

/* ---- one file's tree -> the registries.conf model ---- */

enum conf_kind {
	CONF_MAIN,   /* registries.conf: version 2, or version 1 */
	CONF_DROPIN, /* a registries.conf.d file: version 2 only */
	CONF_ALIASES /* the short-name aliases cache: [aliases] only */
};

static int nfail(const char *path, const struct tnode *n, struct qerr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int nfail(const char *path, const struct tnode *n, struct qerr *err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qerr_set(err, "%s:%d: %s", path, n->line, msg);
}

static int want(const char *path, const struct tnode *n, enum tkind kind, const char *what, struct qerr *err)
{
	static const char *const names[] = {"a table", "an array", "a string", "true or false"};

	return n->kind == kind ? 0 : nfail(path, n, err, "%s must be %s", what, names[kind]);
}

static int want_strv(const char *path, const struct tnode *n, const char *what, struct strv *out, struct qerr *err)
{
	if (n->kind != TK_ARRAY)
		return nfail(path, n, err, "%s must be an array of strings", what);
	for (size_t i = 0; i < n->n; i++)
		if (n->kids[i]->kind != TK_STR)
			return nfail(path, n->kids[i], err, "%s must be an array of strings", what);
	strv_free(out);
	for (size_t i = 0; i < n->n; i++)
		strv_push(out, n->kids[i]->str);
	return 0;
}

static int set_str(const char *path, const struct tnode *n, char **slot, struct qerr *err)
{
	if (want(path, n, TK_STR, n->key, err) < 0)
		return -1;
	free(*slot);
	*slot = xstrdup(n->str);
	return 0;
}

static int set_bool(const char *path, const struct tnode *n, bool *slot, struct qerr *err)
{
	if (want(path, n, TK_BOOL, n->key, err) < 0)
		return -1;
	*slot = n->b;
	return 0;
}

static int conv_mirror(const char *path, const struct tnode *tbl, struct regconf_mirror *m, struct qerr *err)
{
	for (size_t i = 0; i < tbl->n; i++) {
		const struct tnode *k = tbl->kids[i];
		int rc;

		if (!strcmp(k->key, "location")) {
			rc = set_str(path, k, &m->location, err);
		} else if (!strcmp(k->key, "insecure")) {
			rc = set_bool(path, k, &m->insecure, err);
		} else if (!strcmp(k->key, "pull-from-mirror")) {
			rc = want(path, k, TK_STR, k->key, err);
			if (rc == 0 && (!*k->str || !strcmp(k->str, "all")))
				m->pull_from = *k->str ? PFM_ALL : PFM_UNSET;
			else if (rc == 0 && !strcmp(k->str, "digest-only"))
				m->pull_from = PFM_DIGEST_ONLY;
			else if (rc == 0 && !strcmp(k->str, "tag-only"))
				m->pull_from = PFM_TAG_ONLY;
			else if (rc == 0)
				rc = nfail(path, k, err,
				           "pull-from-mirror must be \"all\", \"digest-only\" or \"tag-only\"");
		} else {
			rc = nfail(path, k, err,
			           "unsupported key \"%s\" in [[registry.mirror]] (containers-registries.conf(5) has "
			           "location, insecure, pull-from-mirror)",
			           k->key);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static struct regconf_registry *reg_add(struct regconf *rc, const char *path, int line)
{
	struct regconf_registry *r;

	rc->regs = xrealloc(rc->regs, (rc->nregs + 1) * sizeof(*rc->regs));
	r = &rc->regs[rc->nregs++];
	memset(r, 0, sizeof(*r));
	r->file = xstrdup(path);
	r->line = line;
	return r;
}

static int conv_mirrors(const char *path, const struct tnode *arr, struct regconf_registry *r, struct qerr *err)
{
	if (arr->kind != TK_ARRAY)
		return nfail(path, arr, err, "mirror must be an array of tables ([[registry.mirror]])");
	for (size_t i = 0; i < arr->n; i++) {
		struct regconf_mirror *m;

		if (want(path, arr->kids[i], TK_TABLE, "each mirror", err) < 0)
			return -1;
		r->mirrors = xrealloc(r->mirrors, (r->nmirrors + 1) * sizeof(*r->mirrors));
		m = &r->mirrors[r->nmirrors++];
		memset(m, 0, sizeof(*m));
		if (conv_mirror(path, arr->kids[i], m, err) < 0)
			return -1;
	}
	return 0;
}

static int conv_registry(const char *path, const struct tnode *tbl, struct regconf *rc, struct qerr *err)
{
	struct regconf_registry *r = reg_add(rc, path, tbl->line);

	for (size_t i = 0; i < tbl->n; i++) {
		const struct tnode *k = tbl->kids[i];
		int res;

		if (!strcmp(k->key, "prefix"))
			res = set_str(path, k, &r->prefix, err);
		else if (!strcmp(k->key, "location"))
			res = set_str(path, k, &r->location, err);
		else if (!strcmp(k->key, "insecure"))
			res = set_bool(path, k, &r->insecure, err);
		else if (!strcmp(k->key, "blocked"))
			res = set_bool(path, k, &r->blocked, err);
		else if (!strcmp(k->key, "mirror-by-digest-only"))
			res = set_bool(path, k, &r->mirror_by_digest_only, err);
		else if (!strcmp(k->key, "mirror"))
			res = conv_mirrors(path, k, r, err);
		else if (!strcmp(k->key, "pull-from-mirror"))
			res = nfail(path, k, err,
			            "pull-from-mirror belongs to a [[registry.mirror]], not to the registry");
		else
			res = nfail(path, k, err,
			            "unsupported key \"%s\" in [[registry]] (containers-registries.conf(5) has prefix, "
			            "location, insecure, blocked, mirror-by-digest-only, [[registry.mirror]])",
			            k->key);
		if (res < 0)
			return -1;
	}
	return 0;
}

static int conv_aliases(const char *path, const struct tnode *tbl, struct regconf *rc, struct qerr *err)
{
	if (want(path, tbl, TK_TABLE, "aliases", err) < 0)
		return -1;
	for (size_t i = 0; i < tbl->n; i++) {
		autofree char *what = xasprintf("alias \"%s\"", tbl->kids[i]->key);

		if (want(path, tbl->kids[i], TK_STR, what, err) < 0)
			return -1;
		strv_push(&rc->alias_names, tbl->kids[i]->key);
		strv_push(&rc->alias_values, tbl->kids[i]->str);
		strv_push(&rc->alias_files, path);
	}
	return 0;
}

/* The registry entry of a version-1 location, made when first named. */
static struct regconf_registry *v1_registry(struct regconf *rc, const char *path, const struct tnode *n)
{
	for (size_t i = 0; i < rc->nregs; i++)
		if (!strcmp(rc->regs[i].location, n->str))
			return &rc->regs[i];
	{
		struct regconf_registry *r = reg_add(rc, path, n->line);

		r->location = xstrdup(n->str);
		return r;
	}
}

/* [registries.search] / [registries.insecure] / [registries.block], each `registries = [...]`: converted as
   podman does (block, then insecure, each location its own [[registry]]). */
static int conv_v1(const char *path, const struct tnode *v1, struct regconf *rc, struct qerr *err)
{
	static const char *const lists[] = {"block", "insecure", "search"};

	if (want(path, v1, TK_TABLE, "registries", err) < 0)
		return -1;
	for (size_t i = 0; i < v1->n; i++) {
		const struct tnode *l = v1->kids[i];

		if (strcmp(l->key, "search") && strcmp(l->key, "insecure") && strcmp(l->key, "block"))
			return nfail(path, l, err,
			             "unsupported key \"registries.%s\" (version 1 has [registries.search], "
			             "[registries.insecure], [registries.block])",
			             l->key);
		if (want(path, l, TK_TABLE, "registries.search, .insecure and .block", err) < 0)
			return -1;
		for (size_t k = 0; k < l->n; k++)
			if (strcmp(l->kids[k]->key, "registries"))
				return nfail(path, l->kids[k], err,
				             "unsupported key \"%s\" in [registries.%s] (it has registries = [...])",
				             l->kids[k]->key, l->key);
	}
	for (size_t li = 0; li < 3; li++) {
		const struct tnode *l = toml_get(v1, lists[li]), *regs = l ? toml_get(l, "registries") : NULL;
		struct strv names = {0};

		if (!regs)
			continue;
		if (want_strv(path, regs, "registries", &names, err) < 0) {
			strv_free(&names);
			return -1;
		}
		if (li == 2) {
			strv_free(&rc->search);
			rc->search = names;
			rc->search_set = true;
			rc->search_file = xstrdup(path);
			continue;
		}
		for (size_t k = 0; k < regs->n; k++) {
			struct regconf_registry *r = v1_registry(rc, path, regs->kids[k]);

			r->blocked = r->blocked || li == 0;
			r->insecure = r->insecure || li == 1;
		}
		strv_free(&names);
	}
	return 0;
}

static int conv_short_name_mode(const char *path, const struct tnode *k, struct regconf *rc, struct qerr *err)
{
	static const char *const modes[] = {"", "enforcing", "permissive", "disabled"};

	if (want(path, k, TK_STR, k->key, err) < 0)
		return -1;
	for (int m = SNM_ENFORCING; m <= SNM_DISABLED; m++) {
		if (!strcmp(k->str, modes[m])) {
			rc->mode = (enum regconf_snm)m;
			rc->mode_file = xstrdup(path);
			return 0;
		}
	}
	if (!*k->str)
		return 0; /* "" leaves it to another file (podman's default: permissive) */
	return nfail(path, k, err, "short-name-mode must be \"enforcing\", \"permissive\" or \"disabled\"");
}

static int conv_top(const char *path, const struct tnode *root, enum conf_kind kind, struct regconf *rc,
                    struct qerr *err)
{
	const struct tnode *v1 = NULL, *v2 = NULL;

	for (size_t i = 0; i < root->n; i++) {
		const struct tnode *k = root->kids[i];
		int res = 0;

		if (kind == CONF_ALIASES && strcmp(k->key, "aliases"))
			return nfail(path, k, err,
			             "unsupported key \"%s\" (the short-name aliases file holds [aliases])", k->key);
		if (!strcmp(k->key, "registries")) {
			v1 = k;
			continue;
		}
		v2 = v2 ? v2 : k;
		if (!strcmp(k->key, "unqualified-search-registries")) {
			res = want_strv(path, k, k->key, &rc->search, err);
			rc->search_set = true;
			free(rc->search_file);
			rc->search_file = xstrdup(path);
		} else if (!strcmp(k->key, "short-name-mode")) {
			res = conv_short_name_mode(path, k, rc, err);
		} else if (!strcmp(k->key, "credential-helpers")) {
			res = want_strv(path, k, k->key, &rc->cred_helpers, err);
			rc->cred_helpers_set = true;
		} else if (!strcmp(k->key, "additional-layer-store-auth-helper")) {
			res = want(path, k, TK_STR, k->key, err);
			if (res == 0)
				log_info("%s:%d: additional-layer-store-auth-helper has no meaning for qimg (it has no "
				         "additional layer store): ignored",
				         path, k->line);
		} else if (!strcmp(k->key, "registry")) {
			if (k->kind != TK_ARRAY)
				res =
				    nfail(path, k, err,
				          "registry must be an array of tables ([[registry]]; each [[registry.mirror]] "
				          "goes after its [[registry]])");
			for (size_t r = 0; res == 0 && r < k->n; r++) {
				res = want(path, k->kids[r], TK_TABLE, "each registry", err);
				if (res == 0)
					res = conv_registry(path, k->kids[r], rc, err);
			}
		} else if (!strcmp(k->key, "aliases")) {
			res = conv_aliases(path, k, rc, err);
		} else {
			res = nfail(path, k, err,
			            "unsupported key \"%s\" (containers-registries.conf(5) has "
			            "unqualified-search-registries, short-name-mode, credential-helpers, [[registry]], "
			            "[aliases])",
			            k->key);
		}
		if (res < 0)
			return -1;
	}
	if (!v1)
		return 0;
	if (kind == CONF_DROPIN)
		return nfail(path, v1, err,
		             "a registries.conf.d file must use version 2: for [registries.search] write "
		             "unqualified-search-registries = [...], for [registries.insecure] and [registries.block] "
		             "[[registry]] tables with insecure = true or blocked = true");
	if (v2)
		return nfail(path, v1, err,
		             "version 1 [registries.*] tables mixed with version 2 keys (\"%s\" on line %d): use "
		             "unqualified-search-registries and [[registry]] insecure / blocked instead",
		             v2->key, v2->line);
	return conv_v1(path, v1, rc, err);
}

/* ---- checks after parsing one file ---- */

/* Trailing slashes go, as podman trims them. */
static void trim_slashes(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
}

/* "host[:port]" followed by nothing or "/path": the shape of a location. */
static bool location_ok(const char *s)
{
	size_t host = strcspn(s, "/");

	if (!*s || host == 0 || strstr(s, "://") || strchr(s, '@') || strspn(s, " \t") || s[strlen(s) - 1] == '/')
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '\\' || (unsigned char)*p == 0x7f)
			return false;
	return true;
}

static bool is_wildcard(const char *prefix)
{
	return strncmp(prefix, "*.", 2) == 0;
}

static int check_registry(const char *path, struct regconf_registry *r, struct qerr *err)
{
	trim_slashes(r->prefix);
	trim_slashes(r->location);
	if (!r->prefix && !r->location)
		return qerr_set(err, "%s:%d: [[registry]] needs a location or a prefix", path, r->line);
	if (r->prefix && is_wildcard(r->prefix)) {
		if (strpbrk(r->prefix, "/@:") || !location_ok(r->prefix + 2))
			return qerr_set(err, "%s:%d: wildcard prefix \"%s\" must be *.DOMAIN", path, r->line,
			                r->prefix);
		if (r->location && *r->location)
			return qerr_set(err, "%s:%d: a wildcard prefix takes no location", path, r->line);
	} else if (!location_ok(r->prefix ? r->prefix : r->location)) {
		return qerr_set(err, "%s:%d: \"%s\" is not host[:port][/path] (no scheme)", path, r->line,
		                r->prefix ? r->prefix : r->location);
	} else if (!r->location || !*r->location) {
		return qerr_set(err, "%s:%d: prefix \"%s\" needs a location (only a *.DOMAIN prefix goes without)",
		                path, r->line, r->prefix);
	}
	if (r->location && *r->location && !location_ok(r->location))
		return qerr_set(err, "%s:%d: location \"%s\" is not host[:port][/path] (no scheme)", path, r->line,
		                r->location);
	if (!r->prefix)
		r->prefix = xstrdup(r->location);
	for (size_t i = 0; i < r->nmirrors; i++) {
		trim_slashes(r->mirrors[i].location);
		if (!r->mirrors[i].location || !location_ok(r->mirrors[i].location))
			return qerr_set(err, "%s:%d: mirror %zu of this registry needs a location host[:port][/path]",
			                path, r->line, i + 1);
		if (r->mirror_by_digest_only && r->mirrors[i].pull_from != PFM_UNSET)
			return qerr_set(err,
			                "%s:%d: mirror-by-digest-only and a mirror's pull-from-mirror cannot be set "
			                "together (%s)",
			                path, r->line, r->mirrors[i].location);
	}
	return 0;
}

static void reg_free(struct regconf_registry *r)
{
	for (size_t k = 0; k < r->nmirrors; k++)
		free(r->mirrors[k].location);
	free(r->mirrors);
	free(r->prefix);
	free(r->location);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

/* The same location named twice must agree on insecure and blocked (podman refuses the file otherwise); the
   same prefix twice: the first entry wins and the later one is dropped, as podman does. */
static int check_registries(const char *path, struct regconf *rc, struct qerr *err)
{
	for (size_t i = 0; i < rc->nregs; i++) {
		struct regconf_registry *r = &rc->regs[i];

		if (check_registry(path, r, err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++) {
			const struct regconf_registry *o = &rc->regs[k];
			const char *a = r->location && *r->location ? r->location : r->prefix;
			const char *b = o->location && *o->location ? o->location : o->prefix;

			if (!strcmp(a, b) && (r->insecure != o->insecure || r->blocked != o->blocked))
				return qerr_set(err,
				                "%s:%d: registry \"%s\" is defined on line %d too, with another %s "
				                "setting",
				                path, r->line, a, o->line,
				                r->insecure != o->insecure ? "insecure" : "blocked");
		}
	}
	for (size_t i = 0; i < rc->nregs; i++) {
		for (size_t k = 0; k < i; k++) {
			if (strcmp(rc->regs[k].prefix, rc->regs[i].prefix))
				continue;
			log_info("%s:%d: prefix \"%s\" was already given on line %d: this entry is ignored", path,
			         rc->regs[i].line, rc->regs[i].prefix, rc->regs[k].line);
			reg_free(&rc->regs[i]);
			memmove(&rc->regs[i], &rc->regs[i + 1], (rc->nregs - i - 1) * sizeof(*rc->regs));
			rc->nregs--;
			i--;
			break;
		}
	}
	return 0;
}

/* An alias's value: a full name, no tag or digest, normalized (docker.io/alpine is docker.io/library/alpine);
   "" resets an alias an earlier file set. */
static int check_alias(const char *path, struct regconf *rc, size_t i, struct qerr *err)
{
	const char *name = rc->alias_names.v[i], *value = rc->alias_values.v[i];
	const char *last = strrchr(value, '/');
	struct image_ref r;
	struct qerr e;

	if (!regconf_is_short(name) || strpbrk(name, ":@") || ref_parse(name, &r, &e) < 0)
		return qerr_set(err, "%s: [aliases]: \"%s\" is not a short name without tag", path, name);
	ref_free(&r);
	if (!*value)
		return 0;
	if (regconf_is_short(value) || strpbrk(last ? last : value, ":@") || ref_parse(value, &r, &e) < 0)
		return qerr_set(err,
		                "%s: [aliases]: \"%s\" = \"%s\": the value must be a full name (host/path) without "
		                "tag or digest",
		                path, name, value);
	free(rc->alias_values.v[i]);
	rc->alias_values.v[i] = ref_name(&r);
	ref_free(&r);
	return 0;
}

static int check_all(const char *path, struct regconf *rc, struct qerr *err)
{
	if (check_registries(path, rc, err) < 0)
		return -1;
	for (size_t i = 0; i < rc->search.n; i++) {
		trim_slashes(rc->search.v[i]);
		if (!location_ok(rc->search.v[i]) || strchr(rc->search.v[i], '/'))
			return qerr_set(err, "%s: unqualified-search-registries: \"%s\" is not host[:port]", path,
			                rc->search.v[i]);
	}
	for (size_t i = 0; i < rc->cred_helpers.n; i++)
		if (!*rc->cred_helpers.v[i] || strchr(rc->cred_helpers.v[i], '/'))
			return qerr_set(err, "%s: credential-helpers: \"%s\" is not a helper name", path,
			                rc->cred_helpers.v[i]);
	for (size_t i = 0; i < rc->alias_names.n; i++)
		if (check_alias(path, rc, i, err) < 0)
			return -1;
	return 0;
}

static int conf_parse(const char *text, const char *path, enum conf_kind kind, struct regconf *rc, struct qerr *err)
{
	struct tnode *root = NULL;
	int res = 0;

	memset(rc, 0, sizeof(*rc));
	rc->path = xstrdup(path);
	if (strnlen(text, REGCONF_MAX + 1) > REGCONF_MAX)
		res = qerr_set(err, "%s: larger than %d bytes", path, REGCONF_MAX);
	else if (!(root = toml_parse(text, path, err)))
		res = -1;
	if (res == 0)
		res = conv_top(path, root, kind, rc, err);
	if (res == 0)
		res = check_all(path, rc, err);
	toml_free(root);
	if (res < 0)
		regconf_free(rc);
	return res;
}

int regconf_parse(const char *text, const char *path, struct regconf *rc, struct qerr *err)
{
	return conf_parse(text, path, CONF_MAIN, rc, err);
}

void regconf_free(struct regconf *rc)
{
	for (size_t i = 0; i < rc->nregs; i++)
		reg_free(&rc->regs[i]);
	free(rc->regs);
	strv_free(&rc->search);
	strv_free(&rc->cred_helpers);
	strv_free(&rc->alias_names);
	strv_free(&rc->alias_values);
	strv_free(&rc->alias_files);
	free(rc->search_file);
	free(rc->mode_file);
	free(rc->path);
	memset(rc, 0, sizeof(*rc));
}

/* ---- several files: podman's merge (containers-registries.conf.d(5)) ---- */

static void path_add(struct regconf *dst, const char *path)
{
	char *p = dst->path ? xasprintf("%s, %s", dst->path, path) : xstrdup(path);

	free(dst->path);
	dst->path = p;
}

static void take_str(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

static void take_strv(struct strv *dst, struct strv *src)
{
	strv_free(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

/* src over dst (src is consumed): a [[registry]] replaces dst's entry with the same prefix, or is added;
   unqualified-search-registries, short-name-mode and credential-helpers replace dst's when src sets them (an
   empty list too); aliases replace one by one. */
void regconf_merge(struct regconf *dst, struct regconf *src)
{
	for (size_t i = 0; i < src->nregs; i++) {
		struct regconf_registry *slot = NULL;

		for (size_t k = 0; k < dst->nregs && !slot; k++)
			if (!strcmp(dst->regs[k].prefix, src->regs[i].prefix))
				slot = &dst->regs[k];
		if (slot) {
			reg_free(slot);
		} else {
			dst->regs = xrealloc(dst->regs, (dst->nregs + 1) * sizeof(*dst->regs));
			slot = &dst->regs[dst->nregs++];
		}
		*slot = src->regs[i];
	}
	src->nregs = 0;
	if (src->search_set) {
		take_strv(&dst->search, &src->search);
		take_str(&dst->search_file, &src->search_file);
		dst->search_set = true;
	}
	if (src->mode != SNM_UNSET) {
		dst->mode = src->mode;
		take_str(&dst->mode_file, &src->mode_file);
	}
	if (src->cred_helpers_set) {
		take_strv(&dst->cred_helpers, &src->cred_helpers);
		dst->cred_helpers_set = true;
	}
	for (size_t i = 0; i < src->alias_names.n; i++) {
		size_t k = 0;

		while (k < dst->alias_names.n && strcmp(dst->alias_names.v[k], src->alias_names.v[i]))
			k++;
		if (k == dst->alias_names.n) {
			strv_push(&dst->alias_names, src->alias_names.v[i]);
			strv_push(&dst->alias_values, src->alias_values.v[i]);
			strv_push(&dst->alias_files, src->alias_files.v[i]);
		} else {
			take_str(&dst->alias_values.v[k], &src->alias_values.v[i]);
			take_str(&dst->alias_files.v[k], &src->alias_files.v[i]);
		}
	}
	path_add(dst, src->path);
	regconf_free(src);
}

/* 1 read and merged into rc, 0 missing (allowed unless must), -1 error. */
static int load_file(const char *path, enum conf_kind kind, bool must, struct regconf *rc, struct qerr *err)
{
	struct regconf one;
	size_t len = 0;
	autofree char *text = read_file_at(AT_FDCWD, path, REGCONF_MAX, &len, err);

	if (!text) {
		if (!must &&
		    (err->code == ENOENT || err->code == ENOTDIR || (kind == CONF_DROPIN && err->code == EISDIR)))
			return 0;
		return qerr_wrap(err, "registries.conf: ");
	}
	if (conf_parse(text, path, kind, &one, err) < 0)
		return -1;
	log_debug("registries.conf: read %s", path);
	regconf_merge(rc, &one);
	return 1;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.conf file of dir (not its subdirectories) in lexical order; a missing dir is none. */
static int load_dir(const char *dir, struct regconf *rc, struct qerr *err)
{
	DIR *d = opendir(dir);
	struct strv names = {0};
	struct dirent *e;
	int res = 0;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : qerr_sys(err, "registries.conf.d: open %s", dir);
	while (res == 0 && (errno = 0, e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 5, ".conf") || e->d_type == DT_DIR)
			continue;
		if (names.n >= DROPIN_MAX)
			res = qerr_set(err, "registries.conf.d: %s holds more than %d .conf files", dir, DROPIN_MAX);
		strv_push(&names, e->d_name);
	}
	if (res == 0 && errno)
		res = qerr_sys(err, "registries.conf.d: read %s", dir);
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_name);
	for (size_t i = 0; res == 0 && i < names.n; i++) {
		autofree char *path = xasprintf("%s/%s", dir, names.v[i]);

		res = load_file(path, CONF_DROPIN, false, rc, err) < 0 ? -1 : 0;
	}
	strv_free(&names);
	return res;
}

int regconf_load_files(const struct regconf_files *f, struct regconf *rc, struct qerr *err)
{
	bool user_main = false;
	int r = 0;

	memset(rc, 0, sizeof(*rc));
	if (f->containers) {
		r = load_file(f->containers, CONF_MAIN, true, rc, err);
	} else {
		if (f->user)
			r = load_file(f->user, CONF_MAIN, false, rc, err);
		user_main = r == 1;
		if (r == 0 && f->system)
			r = load_file(f->system, CONF_MAIN, false, rc, err);
	}
	if (r >= 0 && !user_main && f->system_dir) /* podman: a user's registries.conf replaces the system's dir too */
		r = load_dir(f->system_dir, rc, err);
	if (r >= 0 && f->user_dir)
		r = load_dir(f->user_dir, rc, err);
	if (r >= 0 && f->qimg) {
		r = load_file(f->qimg, CONF_MAIN, f->qimg_must, rc, err);
		if (r == 0 && f->qimg_fallback)
			r = load_file(f->qimg_fallback, CONF_MAIN, false, rc, err);
	}
	if (r >= 0 && f->aliases_cache)
		r = load_file(f->aliases_cache, CONF_ALIASES, false, rc, err);
	if (r < 0) {
		regconf_free(rc);
		return -1;
	}
	return 0;
}

/* The short-name aliases podman records: root's, else the user's ($XDG_CACHE_HOME, else ~/.cache); NULL without a
   home. Caller frees. */
static char *aliases_cache_path(void)
{
	const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		return xstrdup(SHORT_NAME_ALIASES_ROOT);
	if (cache && *cache)
		return xasprintf("%s/containers/short-name-aliases.conf", cache);
	if (home && *home)
		return xasprintf("%s/.cache/containers/short-name-aliases.conf", home);
	return NULL;
}

/* name = value into the aliases cache, under its lock (the fcntl lock on FILE.lock that podman takes too). */
static int alias_write(const char *path, const char *name, const char *value, struct qerr *err)
{
	autofree char *lockpath = xasprintf("%s.lock", path);
	autoclose int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct regconf_files f = {.aliases_cache = path};
	struct regconf cache, add = {.path = xstrdup(path)};
	struct buf b = {0};
	int rc;

	strv_push(&add.alias_names, name);
	strv_push(&add.alias_values, value);
	strv_push(&add.alias_files, path);
	if (lock < 0) {
		regconf_free(&add);
		return qerr_sys(err, "short-name aliases: open %s", lockpath);
	}
	while ((rc = fcntl(lock, F_SETLKW, &fl)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		regconf_free(&add);
		return qerr_sys(err, "short-name aliases: lock %s", lockpath);
	}
	if (regconf_load_files(&f, &cache, err) < 0) {
		regconf_free(&add);
		return -1;
	}
	regconf_merge(&cache, &add);
	buf_printf(&b, "[aliases]\n");
	for (size_t i = 0; i < cache.alias_names.n; i++) /* validated names: no quote or backslash to escape */
		buf_printf(&b, "  \"%s\" = \"%s\"\n", cache.alias_names.v[i], cache.alias_values.v[i]);
	regconf_free(&cache);
	rc = write_file_atomic_at(AT_FDCWD, path, b.p, b.len, 0600, true, err);
	buf_free(&b);
	return rc;
}

int regconf_alias_record(const char *short_name, const char *full, struct qerr *err)
{
	autofree char *path = aliases_cache_path(), *name = xstrndup(short_name, strcspn(short_name, ":@"));
	autofree char *dir = NULL, *value = NULL;
	struct image_ref r;

	if (!path)
		return qerr_set(err, "short-name aliases: no home directory to keep them in");
	if (ref_parse(full, &r, err) < 0)
		return -1;
	value = ref_name(&r);
	ref_free(&r);
	dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
	if (mkdir_p(dir, 0700, err) < 0)
		return qerr_wrap(err, "short-name aliases: ");
	if (alias_write(path, name, value, err) < 0)
		return -1;
	log_info("%s: recorded as an alias of %s in %s", name, value, path);
	return 0;
}

int regconf_load(struct regconf *rc, struct qerr *err)
{
	const char *qenv = getenv("QIMG_REGISTRIES_CONF"), *cenv = getenv("CONTAINERS_REGISTRIES_CONF");
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	autofree char *user = NULL, *user_dir = NULL, *qimg = NULL, *aliases = NULL;
	struct regconf_files f = {
	    .containers = cenv && *cenv ? cenv : NULL,
	    .system = CONTAINERS_REGISTRIES_CONF,
	    .system_dir = CONTAINERS_REGISTRIES_CONF_D,
	};

	if (home && *home) {
		user = xasprintf("%s/.config/containers/registries.conf", home);
		user_dir = xasprintf("%s/.config/containers/registries.conf.d", home);
	}
	f.user = user, f.user_dir = user_dir;
	if (qenv && *qenv) {
		f.qimg = qenv, f.qimg_must = true;
	} else {
		if (xdg && *xdg)
			qimg = xasprintf("%s/qimg/registries.conf", xdg);
		else if (home && *home)
			qimg = xasprintf("%s/.config/qimg/registries.conf", home);
		f.qimg = qimg ? qimg : REGCONF_SYSTEM;
		f.qimg_fallback = qimg ? REGCONF_SYSTEM : NULL;
	}
	f.aliases_cache = aliases = aliases_cache_path();
	return regconf_load_files(&f, rc, err);
}

/* ---- where a pull goes ---- */

bool regconf_is_short(const char *ref)
{
	size_t n = strcspn(ref, "/");
	autofree char *first = xstrndup(ref, n);

	return ref[n] != '/' || (!strchr(first, '.') && !strchr(first, ':') && strcmp(first, "localhost") != 0);
}

/* The full name name[0..len) is an alias of, or NULL (none, or reset with ""). */
static const char *alias_of(const struct regconf *rc, const char *name, size_t len)
{
	for (size_t i = 0; i < rc->alias_names.n; i++)
		if (strlen(rc->alias_names.v[i]) == len && !strncmp(rc->alias_names.v[i], name, len))
			return *rc->alias_values.v[i] ? rc->alias_values.v[i] : NULL;
	return NULL;
}

/* The registry entry whose prefix matches name ("domain/path") most specifically; NULL when none. A wildcard
   counts as matching the whole domain, and loses to a plain prefix of the same length (that names the domain
   itself), wherever each stands in the file. */
static const struct regconf_registry *best_match(const struct regconf *rc, const char *name, size_t *matched)
{
	const struct regconf_registry *best = NULL;
	size_t best_len = 0, dn = strcspn(name, "/");

	for (size_t i = 0; i < rc->nregs; i++) {
		const char *p = rc->regs[i].prefix;
		size_t n = strlen(p);
		bool ok;

		if (is_wildcard(p)) { /* "*.example.com": any subdomain; the whole domain matched */
			ok = dn > n - 1 && strncmp(name + dn - (n - 1), p + 1, n - 1) == 0;
			n = dn;
		} else {
			ok = strncmp(name, p, n) == 0 && (name[n] == '\0' || name[n] == '/');
		}
		if (ok && (n > best_len || (n == best_len && best && is_wildcard(best->prefix) && !is_wildcard(p)))) {
			best = &rc->regs[i];
			best_len = n;
		}
	}
	*matched = best_len;
	return best;
}

const struct regconf_registry *regconf_find(const struct regconf *rc, const char *name)
{
	size_t matched;

	return best_match(rc, name, &matched);
}

/* location + rest as an endpoint ref ("host[:port]" / "path"), tag and digest from r. */
static int endpoint_set(struct image_ref *e, const char *location, const char *rest, const struct image_ref *r,
                        struct qerr *err)
{
	autofree char *full = xasprintf("%s%s", location, rest);
	size_t dn = strcspn(full, "/");

	if (full[dn] != '/' || !full[dn + 1])
		return qerr_set(err, "registries.conf: %s names no repository", full);
	e->domain = xstrndup(full, dn);
	e->path = xstrdup(full + dn + 1);
	e->tag = r->tag ? xstrdup(r->tag) : NULL;
	e->digest = r->digest ? xstrdup(r->digest) : NULL;
	return 0;
}

static int source_add(struct pull_source **v, size_t *n, const char *refstr, const char *location, const char *rest,
                      const struct image_ref *r, bool insecure, bool mirror, struct qerr *err)
{
	struct pull_source *s;

	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	s = &(*v)[*n];
	memset(s, 0, sizeof(*s));
	if (endpoint_set(&s->endpoint, location, rest, r, err) < 0) {
		ref_free(&s->endpoint);
		return -1;
	}
	s->ref = xstrdup(refstr);
	s->insecure = insecure;
	s->mirror = mirror;
	(*n)++;
	return 0;
}

/* Whether a pull of r (by digest or by tag) may use mirror m of reg. */
static bool mirror_used(const struct regconf_registry *reg, const struct regconf_mirror *m, const struct image_ref *r)
{
	if (reg->mirror_by_digest_only)
		return r->digest != NULL;
	if (m->pull_from == PFM_DIGEST_ONLY)
		return r->digest != NULL;
	if (m->pull_from == PFM_TAG_ONLY)
		return r->digest == NULL;
	return true;
}

/* Mirrors and the registry for one qualified reference. 1 when its registry is blocked (nothing added; *blocked_by
   names the file). */
static int sources_for(const struct regconf *rc, const char *refstr, struct pull_source **v, size_t *n,
                       const char **blocked_by, struct qerr *err)
{
	struct image_ref r;
	autofree char *name = NULL;
	const struct regconf_registry *reg;
	size_t matched = 0;
	const char *rest;
	int rc_ = 0;

	if (ref_parse(refstr, &r, err) < 0)
		return -1;
	name = ref_name(&r);
	reg = best_match(rc, name, &matched);
	rest = name + matched;
	if (reg && reg->blocked) {
		*blocked_by = reg->file;
		rc_ = 1;
	}
	for (size_t i = 0; reg && !reg->blocked && i < reg->nmirrors && rc_ == 0; i++)
		if (mirror_used(reg, &reg->mirrors[i], &r))
			rc_ = source_add(v, n, refstr, reg->mirrors[i].location, rest, &r, reg->mirrors[i].insecure,
			                 true, err);
	if (rc_ == 0 && reg && reg->location && *reg->location)
		rc_ = source_add(v, n, refstr, reg->location, rest, &r, reg->insecure, false, err);
	else if (rc_ == 0)
		rc_ = source_add(v, n, refstr, name, "", &r, reg && reg->insecure, false, err);
	ref_free(&r);
	return rc_;
}

void regconf_candidates(const struct regconf *rc, const char *refstr, struct strv *out)
{
	size_t base = strcspn(refstr, ":@");
	const char *alias;

	if (!regconf_is_short(refstr)) {
		strv_push(out, refstr);
		return;
	}
	alias = alias_of(rc, refstr, base);
	if (alias) {
		strv_push_take(out, xasprintf("%s%s", alias, refstr + base));
		return;
	}
	for (size_t i = 0; i < rc->search.n; i++)
		strv_push_take(out, xasprintf("%s/%s", rc->search.v[i], refstr));
	if (!rc->search_set)
		strv_push(out, refstr); /* no unqualified-search-registries anywhere: docker.io, as docker does */
}

bool regconf_ambiguous(const struct regconf *rc, const char *refstr, const struct strv *names)
{
	return names->n > 1 && rc->mode != SNM_DISABLED && regconf_is_short(refstr) &&
	       !alias_of(rc, refstr, strcspn(refstr, ":@"));
}

/* A short name that resolves to nothing, or (short-name-mode enforcing) to more than one place: refused, as podman
   refuses it without a terminal (on one, pull_image asks first). */
static int short_name_check(const struct regconf *rc, const char *refstr, const struct strv *names, struct qerr *err)
{
	struct buf b = {0};

	if (names->n == 0)
		return qerr_set(
		    err,
		    "short name \"%s\" did not resolve to an alias and no unqualified-search registries are "
		    "defined in %s",
		    refstr, rc->search_file ? rc->search_file : "registries.conf");
	if (rc->mode != SNM_ENFORCING || !regconf_ambiguous(rc, refstr, names))
		return 0;
	buf_append(&b, "", 0);
	for (size_t i = 0; i < names->n; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", names->v[i]);
	qerr_set(
	    err,
	    "short-name resolution enforced but cannot prompt without a TTY: \"%s\" could be %s (short-name-mode = "
	    "\"enforcing\" in %s); give the full name or add an [aliases] entry",
	    refstr, b.p, rc->mode_file ? rc->mode_file : "registries.conf");
	buf_free(&b);
	return -1;
}

int regconf_sources(const struct regconf *rc, const char *refstr, struct pull_source **out, size_t *nout,
                    struct qerr *err)
{
	struct strv names = {0};
	struct pull_source *v = NULL;
	const char *blocked_by = NULL;
	size_t n = 0, blocked = 0;
	int r;

	regconf_candidates(rc, refstr, &names);
	r = short_name_check(rc, refstr, &names, err);
	for (size_t i = 0; i < names.n && r >= 0; i++) {
		r = sources_for(rc, names.v[i], &v, &n, &blocked_by, err);
		blocked += r == 1;
	}
	if (r >= 0 && n == 0)
		r = qerr_set(err, "%s: %s blocked by %s", refstr,
		             blocked > 1 ? "every registry it could come from is" : "its registry is", blocked_by);
	strv_free(&names);
	if (r < 0) {
		pull_sources_free(v, n);
		return -1;
	}
	*out = v;
	*nout = n;
	return 0;
}

void pull_sources_free(struct pull_source *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].ref);
		ref_free(&v[i].endpoint);
	}
	free(v);
}

void regconf_local_names(const struct regconf *rc, const char *refstr, struct strv *out)
{
	size_t first = out->n, base = strcspn(refstr, ":@");
	bool have_plain = false;

	regconf_candidates(rc, refstr, out);
	if (!regconf_is_short(refstr) || alias_of(rc, refstr, base))
		return;
	for (size_t i = first; i < out->n; i++)
		have_plain = have_plain || !strcmp(out->v[i], refstr);
	/* After the search registries, docker.io (the plain short name normalises to it), as podman looks locally. */
	if (!have_plain)
		strv_push(out, refstr);
}

int pull_local_names(const char *refstr, struct strv *out, struct qerr *err)
{
	struct regconf conf;

	if (!regconf_is_short(refstr)) {
		strv_push(out, refstr);
		return 0;
	}
	if (regconf_load(&conf, err) < 0)
		return -1;
	regconf_local_names(&conf, refstr, out);
	regconf_free(&conf);
	return 0;
}
