/* registries.conf: the part of containers-registries.conf(5) v2 that qimg honours ([[registry]] prefix,
   location, insecure, blocked, mirror-by-digest-only; [[registry.mirror]] location, insecure;
   unqualified-search-registries; [aliases]), read by a small strict TOML-subset parser, and the list of places
   a pull tries for one reference: mirrors first, then the registry itself. Plain C (no heavy library). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define REGCONF_MAX (1 << 20) /* bytes of the file */

/* ---- the TOML subset ---- */

struct toml {
	const char *s, *path;
	size_t i;
	int line;
};

enum table { T_TOP, T_REGISTRY, T_MIRROR, T_ALIASES };

static int tfail(const struct toml *t, struct qerr *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int tfail(const struct toml *t, struct qerr *err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qerr_set(err, "%s:%d: %s", t->path, t->line, msg);
}

/* Spaces, tabs, comments; newlines too when nl. */
static void tskip(struct toml *t, bool nl)
{
	for (;;) {
		char c = t->s[t->i];

		if (c == ' ' || c == '\t' || c == '\r') {
			t->i++;
		} else if (c == '#') {
			while (t->s[t->i] && t->s[t->i] != '\n')
				t->i++;
		} else if (c == '\n' && nl) {
			t->i++;
			t->line++;
		} else {
			return;
		}
	}
}

static void put_utf8(struct buf *b, unsigned long cp)
{
	char o[4];
	size_t n;

	if (cp < 0x80) {
		o[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
		o[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		o[2] = (char)(0x80 | (cp >> 6 & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(b, o, n);
}

static int tescape(struct toml *t, struct buf *b, struct qerr *err)
{
	static const char from[] = "\"\\bfnrt", to[] = "\"\\\b\f\n\r\t";
	char c = t->s[++t->i];
	const char *p = c ? strchr(from, c) : NULL;
	unsigned long cp;
	char *end;

	if (p) {
		buf_append(b, &to[p - from], 1);
		t->i++;
		return 0;
	}
	if (c != 'u' && c != 'U')
		return tfail(t, err, "unknown escape \\%c in a string", c ? c : '0');
	{
		size_t n = c == 'u' ? 4 : 8;
		char hex[9] = {0};

		memcpy(hex, t->s + t->i + 1, strnlen(t->s + t->i + 1, n));
		cp = strtoul(hex, &end, 16);
		if (strlen(hex) != n || *end || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			return tfail(t, err, "bad \\%s escape", c == 'u' ? "u" : "U");
		put_utf8(b, cp);
		t->i += 1 + n;
	}
	return 0;
}

/* A "basic" or 'literal' one-line string. */
static int tstring(struct toml *t, char **out, struct qerr *err)
{
	char q = t->s[t->i];
	struct buf b = {0};

	buf_append(&b, "", 0);
	t->i++;
	while (t->s[t->i] != q) {
		char c = t->s[t->i];

		if (c == '\0' || c == '\n') {
			buf_free(&b);
			return tfail(t, err, "unterminated string");
		}
		if ((unsigned char)c < 0x20 && c != '\t') {
			buf_free(&b);
			return tfail(t, err, "control character in a string");
		}
		if (c == '\\' && q == '"') {
			if (tescape(t, &b, err) < 0) {
				buf_free(&b);
				return -1;
			}
			continue;
		}
		buf_append(&b, &c, 1);
		t->i++;
	}
	t->i++;
	*out = b.p;
	return 0;
}

static bool is_bare(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int tkey(struct toml *t, char **out, struct qerr *err)
{
	size_t start = t->i;

	if (t->s[t->i] == '"' || t->s[t->i] == '\'')
		return tstring(t, out, err);
	while (is_bare(t->s[t->i]))
		t->i++;
	if (t->i == start)
		return tfail(t, err, "expected a key, a [table] or [[table]]");
	*out = xstrndup(t->s + start, t->i - start);
	return 0;
}

/* A value: a string, true/false, or an array of strings (may span lines). */
struct tval {
	enum { V_STR, V_BOOL, V_ARRAY } kind;
	char *str;
	bool b;
	struct strv arr;
};

static void tval_free(struct tval *v)
{
	free(v->str);
	strv_free(&v->arr);
	memset(v, 0, sizeof(*v));
}

static int tarray(struct toml *t, struct tval *v, struct qerr *err)
{
	v->kind = V_ARRAY;
	t->i++;
	for (;;) {
		char *s;

		tskip(t, true);
		if (t->s[t->i] == ']') {
			t->i++;
			return 0;
		}
		if (t->s[t->i] != '"' && t->s[t->i] != '\'')
			return tfail(t, err, "arrays hold strings only");
		if (tstring(t, &s, err) < 0)
			return -1;
		strv_push_take(&v->arr, s);
		tskip(t, true);
		if (t->s[t->i] == ',')
			t->i++;
		else if (t->s[t->i] != ']')
			return tfail(t, err, "expected , or ] in an array");
	}
}

static int tvalue(struct toml *t, struct tval *v, struct qerr *err)
{
	const char *p = t->s + t->i;

	memset(v, 0, sizeof(*v));
	if (*p == '"' || *p == '\'') {
		v->kind = V_STR;
		if (strncmp(p, "\"\"\"", 3) == 0 || strncmp(p, "'''", 3) == 0)
			return tfail(t, err, "multi-line strings are not supported");
		return tstring(t, &v->str, err);
	}
	if (*p == '[')
		return tarray(t, v, err);
	if (strncmp(p, "true", 4) == 0 && !is_bare(p[4])) {
		v->kind = V_BOOL, v->b = true, t->i += 4;
		return 0;
	}
	if (strncmp(p, "false", 5) == 0 && !is_bare(p[5])) {
		v->kind = V_BOOL, v->b = false, t->i += 5;
		return 0;
	}
	if (*p == '{')
		return tfail(t, err, "inline tables are not supported (use [[registry.mirror]] tables)");
	return tfail(t, err, "expected a string, true, false or an array of strings");
}

/* ---- the registries.conf model ---- */

static int want_kind(const struct toml *t, const char *key, const struct tval *v, int kind, struct qerr *err)
{
	static const char *const names[] = {"a string", "true or false", "an array of strings"};

	return (int)v->kind == kind ? 0 : tfail(t, err, "%s must be %s", key, names[kind]);
}

static int set_str(const struct toml *t, const char *key, struct tval *v, char **slot, struct qerr *err)
{
	if (want_kind(t, key, v, V_STR, err) < 0)
		return -1;
	if (*slot)
		return tfail(t, err, "%s given twice in this table", key);
	*slot = v->str;
	v->str = NULL;
	return 0;
}

static int set_bool(const struct toml *t, const char *key, const struct tval *v, bool *slot, struct qerr *err)
{
	if (want_kind(t, key, v, V_BOOL, err) < 0)
		return -1;
	*slot = v->b;
	return 0;
}

static int registry_key(struct toml *t, struct regconf_registry *r, const char *key, struct tval *v, struct qerr *err)
{
	if (!strcmp(key, "prefix"))
		return set_str(t, key, v, &r->prefix, err);
	if (!strcmp(key, "location"))
		return set_str(t, key, v, &r->location, err);
	if (!strcmp(key, "insecure"))
		return set_bool(t, key, v, &r->insecure, err);
	if (!strcmp(key, "blocked"))
		return set_bool(t, key, v, &r->blocked, err);
	if (!strcmp(key, "mirror-by-digest-only"))
		return set_bool(t, key, v, &r->mirror_by_digest_only, err);
	return tfail(t, err,
	             "unsupported key \"%s\" in [[registry]] (qimg knows prefix, location, insecure, blocked, "
	             "mirror-by-digest-only)",
	             key);
}

static int mirror_key(struct toml *t, struct regconf_mirror *m, const char *key, struct tval *v, struct qerr *err)
{
	if (!strcmp(key, "location"))
		return set_str(t, key, v, &m->location, err);
	if (!strcmp(key, "insecure"))
		return set_bool(t, key, v, &m->insecure, err);
	return tfail(t, err, "unsupported key \"%s\" in [[registry.mirror]] (qimg knows location, insecure)", key);
}

static int top_key(struct toml *t, struct regconf *rc, const char *key, struct tval *v, bool *seen_search,
                   struct qerr *err)
{
	if (!strcmp(key, "unqualified-search-registries")) {
		if (want_kind(t, key, v, V_ARRAY, err) < 0)
			return -1;
		if (*seen_search)
			return tfail(t, err, "%s given twice", key);
		*seen_search = true;
		rc->search = v->arr;
		memset(&v->arr, 0, sizeof(v->arr));
		return 0;
	}
	if (!strcmp(key, "registries") || !strcmp(key, "registries.search"))
		return tfail(t, err, "\"%s\": version 1 of registries.conf is not supported; use [[registry]] tables",
		             key);
	return tfail(t, err,
	             "unsupported key \"%s\" (qimg knows unqualified-search-registries, [[registry]], "
	             "[[registry.mirror]], [aliases])",
	             key);
}

static int alias_key(struct toml *t, struct regconf *rc, const char *key, struct tval *v, struct qerr *err)
{
	if (want_kind(t, key, v, V_STR, err) < 0)
		return -1;
	for (size_t i = 0; i < rc->alias_names.n; i++)
		if (!strcmp(rc->alias_names.v[i], key))
			return tfail(t, err, "alias \"%s\" given twice", key);
	strv_push(&rc->alias_names, key);
	strv_push_take(&rc->alias_values, v->str);
	v->str = NULL;
	return 0;
}

/* "[[registry]]", "[[registry.mirror]]", "[aliases]" (spaces allowed inside the brackets). */
static int theader(struct toml *t, struct regconf *rc, enum table *cur, struct qerr *err)
{
	bool dbl = t->s[t->i + 1] == '[';
	size_t start, end;
	autofree char *name = NULL;

	t->i += dbl ? 2 : 1;
	start = t->i;
	while (t->s[t->i] && t->s[t->i] != ']' && t->s[t->i] != '\n')
		t->i++;
	end = t->i;
	while (end > start && (t->s[end - 1] == ' ' || t->s[end - 1] == '\t'))
		end--;
	while (start < end && (t->s[start] == ' ' || t->s[start] == '\t'))
		start++;
	name = xstrndup(t->s + start, end - start);
	if (t->s[t->i] != ']' || (dbl && t->s[t->i + 1] != ']'))
		return tfail(t, err, "unterminated table header");
	t->i += dbl ? 2 : 1;
	if (dbl && !strcmp(name, "registry")) {
		rc->regs = xrealloc(rc->regs, (rc->nregs + 1) * sizeof(*rc->regs));
		memset(&rc->regs[rc->nregs], 0, sizeof(*rc->regs));
		rc->regs[rc->nregs++].line = t->line;
		*cur = T_REGISTRY;
	} else if (dbl && !strcmp(name, "registry.mirror")) {
		struct regconf_registry *r = rc->nregs ? &rc->regs[rc->nregs - 1] : NULL;

		if (!r)
			return tfail(t, err, "[[registry.mirror]] before any [[registry]]");
		r->mirrors = xrealloc(r->mirrors, (r->nmirrors + 1) * sizeof(*r->mirrors));
		memset(&r->mirrors[r->nmirrors++], 0, sizeof(*r->mirrors));
		*cur = T_MIRROR;
	} else if (!dbl && !strcmp(name, "aliases")) {
		*cur = T_ALIASES;
	} else {
		return tfail(t, err, "unsupported table [%s] (qimg knows [[registry]], [[registry.mirror]], [aliases])",
		             name);
	}
	return 0;
}

static int tassign(struct toml *t, struct regconf *rc, enum table cur, bool *seen_search, struct qerr *err)
{
	autofree char *key = NULL;
	struct tval v;
	int r;

	if (tkey(t, &key, err) < 0)
		return -1;
	tskip(t, false);
	if (t->s[t->i] == '.')
		return tfail(t, err, "dotted keys are not supported (%s.…)", key);
	if (t->s[t->i] != '=')
		return tfail(t, err, "expected = after \"%s\"", key);
	t->i++;
	tskip(t, false);
	if (tvalue(t, &v, err) < 0) {
		tval_free(&v);
		return -1;
	}
	if (cur == T_REGISTRY)
		r = registry_key(t, &rc->regs[rc->nregs - 1], key, &v, err);
	else if (cur == T_MIRROR)
		r = mirror_key(t, &rc->regs[rc->nregs - 1].mirrors[rc->regs[rc->nregs - 1].nmirrors - 1], key, &v, err);
	else if (cur == T_ALIASES)
		r = alias_key(t, rc, key, &v, err);
	else
		r = top_key(t, rc, key, &v, seen_search, err);
	tval_free(&v);
	return r;
}

static int tparse(struct toml *t, struct regconf *rc, struct qerr *err)
{
	enum table cur = T_TOP;
	bool seen_search = false;

	for (;;) {
		tskip(t, true);
		if (!t->s[t->i])
			return 0;
		if (t->s[t->i] == '[') {
			if (theader(t, rc, &cur, err) < 0)
				return -1;
		} else if (tassign(t, rc, cur, &seen_search, err) < 0) {
			return -1;
		}
		tskip(t, false);
		if (t->s[t->i] && t->s[t->i] != '\n')
			return tfail(t, err, "unexpected text after the value");
	}
}

/* ---- checks after parsing ---- */

/* "host[:port]" followed by nothing or "/path": the shape of a location. */
static bool location_ok(const char *s)
{
	size_t host = strcspn(s, "/");

	if (!*s || host == 0 || strstr(s, "://") || strchr(s, '@') || strspn(s, " \t") || s[strlen(s) - 1] == '/')
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '\\')
			return false;
	return true;
}

static bool is_wildcard(const char *prefix)
{
	return strncmp(prefix, "*.", 2) == 0;
}

static int check_registry(const char *path, struct regconf_registry *r, struct qerr *err)
{
	if (!r->prefix && !r->location)
		return qerr_set(err, "%s:%d: [[registry]] needs a location or a prefix", path, r->line);
	if (r->prefix && is_wildcard(r->prefix)) {
		if (strchr(r->prefix, '/') || !location_ok(r->prefix + 2))
			return qerr_set(err, "%s:%d: wildcard prefix \"%s\" must be *.DOMAIN", path, r->line,
			                r->prefix);
		if (r->location && *r->location)
			return qerr_set(err, "%s:%d: a wildcard prefix takes no location", path, r->line);
	} else if (!location_ok(r->prefix ? r->prefix : r->location)) {
		return qerr_set(err, "%s:%d: \"%s\" is not host[:port][/path] (no scheme, no trailing /)", path,
		                r->line, r->prefix ? r->prefix : r->location);
	}
	if (r->location && *r->location && !location_ok(r->location))
		return qerr_set(err, "%s:%d: location \"%s\" is not host[:port][/path] (no scheme, no trailing /)",
		                path, r->line, r->location);
	if (!r->prefix)
		r->prefix = xstrdup(r->location);
	for (size_t i = 0; i < r->nmirrors; i++)
		if (!r->mirrors[i].location || !location_ok(r->mirrors[i].location))
			return qerr_set(err, "%s:%d: mirror %zu of this registry needs a location host[:port][/path]",
			                path, r->line, i + 1);
	return 0;
}

static int check_all(const char *path, struct regconf *rc, struct qerr *err)
{
	for (size_t i = 0; i < rc->nregs; i++) {
		if (check_registry(path, &rc->regs[i], err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(rc->regs[k].prefix, rc->regs[i].prefix))
				return qerr_set(err, "%s:%d: prefix \"%s\" already used on line %d", path,
				                rc->regs[i].line, rc->regs[i].prefix, rc->regs[k].line);
	}
	for (size_t i = 0; i < rc->search.n; i++)
		if (!location_ok(rc->search.v[i]) || strchr(rc->search.v[i], '/'))
			return qerr_set(err, "%s: unqualified-search-registries: \"%s\" is not host[:port]", path,
			                rc->search.v[i]);
	for (size_t i = 0; i < rc->alias_names.n; i++) {
		struct image_ref r;
		struct qerr e;

		if (!regconf_is_short(rc->alias_names.v[i]) || strpbrk(rc->alias_names.v[i], ":@"))
			return qerr_set(err, "%s: [aliases]: \"%s\" is not a short name without tag", path,
			                rc->alias_names.v[i]);
		if (regconf_is_short(rc->alias_values.v[i]) || ref_parse(rc->alias_values.v[i], &r, &e) < 0)
			return qerr_set(err,
			                "%s: [aliases]: \"%s\" = \"%s\": the value must be a full name (host/path)",
			                path, rc->alias_names.v[i], rc->alias_values.v[i]);
		ref_free(&r);
	}
	return 0;
}

int regconf_parse(const char *text, const char *path, struct regconf *rc, struct qerr *err)
{
	struct toml t = {text, path, 0, 1};

	memset(rc, 0, sizeof(*rc));
	rc->path = xstrdup(path);
	if (strlen(text) != strnlen(text, REGCONF_MAX + 1) || tparse(&t, rc, err) < 0 || check_all(path, rc, err) < 0) {
		regconf_free(rc);
		return -1;
	}
	return 0;
}

void regconf_free(struct regconf *rc)
{
	for (size_t i = 0; i < rc->nregs; i++) {
		struct regconf_registry *r = &rc->regs[i];

		for (size_t k = 0; k < r->nmirrors; k++)
			free(r->mirrors[k].location);
		free(r->mirrors);
		free(r->prefix);
		free(r->location);
	}
	free(rc->regs);
	strv_free(&rc->search);
	strv_free(&rc->alias_names);
	strv_free(&rc->alias_values);
	free(rc->path);
	memset(rc, 0, sizeof(*rc));
}

/* $QIMG_REGISTRIES_CONF, else the first of $XDG_CONFIG_HOME (or ~/.config)/qimg/registries.conf and
   /etc/qimg/registries.conf that exists. No file: an empty configuration. */
int regconf_load(struct regconf *rc, struct qerr *err)
{
	const char *env = getenv("QIMG_REGISTRIES_CONF"), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char *cand[2] = {NULL, NULL};
	int rc_ = 0;

	memset(rc, 0, sizeof(*rc));
	if (env && *env)
		cand[0] = xstrdup(env);
	else if (xdg && *xdg)
		cand[0] = xasprintf("%s/qimg/registries.conf", xdg);
	else if (home && *home)
		cand[0] = xasprintf("%s/.config/qimg/registries.conf", home);
	if (!(env && *env))
		cand[1] = xstrdup(REGCONF_SYSTEM);
	for (size_t i = 0; i < 2 && cand[i]; i++) {
		size_t len = 0;
		autofree char *text = read_file_at(AT_FDCWD, cand[i], REGCONF_MAX, &len, err);

		if (!text && (err->code == ENOENT || err->code == ENOTDIR) && !(i == 0 && env && *env))
			continue;
		rc_ = text ? regconf_parse(text, cand[i], rc, err) : qerr_wrap(err, "registries.conf: ");
		if (rc_ == 0)
			log_debug("registries.conf: %s", cand[i]);
		break;
	}
	free(cand[0]);
	free(cand[1]);
	return rc_;
}

/* ---- where a pull goes ---- */

bool regconf_is_short(const char *ref)
{
	size_t n = strcspn(ref, "/");
	autofree char *first = xstrndup(ref, n);

	return ref[n] != '/' || (!strchr(first, '.') && !strchr(first, ':') && strcmp(first, "localhost") != 0);
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

/* Mirrors and the registry for one qualified reference. 1 when its registry is blocked (nothing added). */
static int sources_for(const struct regconf *rc, const char *refstr, struct pull_source **v, size_t *n,
                       struct qerr *err)
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
	if (reg && reg->blocked)
		rc_ = 1;
	for (size_t i = 0; reg && !reg->blocked && i < reg->nmirrors && rc_ == 0; i++)
		if (!reg->mirror_by_digest_only || r.digest)
			rc_ = source_add(v, n, refstr, reg->mirrors[i].location, rest, &r, reg->mirrors[i].insecure,
			                 true, err);
	if (rc_ == 0 && reg && reg->location && *reg->location)
		rc_ = source_add(v, n, refstr, reg->location, rest, &r, reg->insecure, false, err);
	else if (rc_ == 0)
		rc_ = source_add(v, n, refstr, name, "", &r, reg && reg->insecure, false, err);
	ref_free(&r);
	return rc_;
}

/* The qualified names a reference stands for: an alias, the search registries, or itself. */
void regconf_candidates(const struct regconf *rc, const char *refstr, struct strv *out)
{
	size_t base = strcspn(refstr, ":@");
	autofree char *name = xstrndup(refstr, base);

	if (!regconf_is_short(refstr)) {
		strv_push(out, refstr);
		return;
	}
	for (size_t i = 0; i < rc->alias_names.n; i++) {
		if (!strcmp(rc->alias_names.v[i], name)) {
			strv_push_take(out, xasprintf("%s%s", rc->alias_values.v[i], refstr + base));
			return;
		}
	}
	for (size_t i = 0; i < rc->search.n; i++)
		strv_push_take(out, xasprintf("%s/%s", rc->search.v[i], refstr));
	if (rc->search.n == 0)
		strv_push(out, refstr); /* docker.io, as docker does */
}

int regconf_sources(const struct regconf *rc, const char *refstr, struct pull_source **out, size_t *nout,
                    struct qerr *err)
{
	struct strv names = {0};
	struct pull_source *v = NULL;
	size_t n = 0, blocked = 0;
	int r = 0;

	regconf_candidates(rc, refstr, &names);
	for (size_t i = 0; i < names.n && r >= 0; i++) {
		r = sources_for(rc, names.v[i], &v, &n, err);
		blocked += r == 1;
	}
	if (r >= 0 && n == 0)
		r = qerr_set(err, "%s: %s blocked by %s", refstr,
		             blocked > 1 ? "every registry it could come from is" : "its registry is", rc->path);
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

int pull_local_names(const char *refstr, struct strv *out, struct qerr *err)
{
	struct regconf conf;
	if (!regconf_is_short(refstr)) {
		strv_push(out, refstr);
		return 0;
	}
	if (regconf_load(&conf, err) < 0)
		return -1;
	size_t first = out->n;
	regconf_candidates(&conf, refstr, out);
	bool aliased = false;
	size_t base = strcspn(refstr, ":@");
	for (size_t i = 0; i < conf.alias_names.n; i++)
		aliased =
		    aliased || (strlen(conf.alias_names.v[i]) == base && !strncmp(conf.alias_names.v[i], refstr, base));
	bool have_plain = false;
	for (size_t i = first; i < out->n; i++)
		have_plain = have_plain || !strcmp(out->v[i], refstr);
	/* After the search registries, docker.io (the plain short name normalises to it), as podman looks locally. */
	if (!aliased && !have_plain)
		strv_push(out, refstr);
	regconf_free(&conf);
	return 0;
}
