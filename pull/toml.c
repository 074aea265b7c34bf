/* The TOML subset that registries.conf files use, into a tree with a line per node: basic, literal and
   multi-line strings with escapes; true and false; arrays over several lines with comments and trailing commas;
   one-line inline tables; dotted keys; [tables] and [[arrays of tables]], each defined once. No numbers or dates
   (no registries.conf key takes one). Plain C: the light qimg reads registries.conf too. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define TOML_DEPTH 32 /* arrays and inline tables nested in one value; parts of a dotted key */

struct toml {
	const char *s, *path;
	size_t i;
	int line, depth;
};

static struct tnode *tnode_new(enum tkind kind, enum thow how, const char *key, int line)
{
	struct tnode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->how = how;
	n->key = key ? xstrdup(key) : NULL;
	n->line = line;
	return n;
}

void toml_free(struct tnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		toml_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->str);
	free(n);
}

static struct tnode *tnode_add(struct tnode *parent, struct tnode *kid)
{
	parent->kids = xrealloc(parent->kids, (parent->n + 1) * sizeof(*parent->kids));
	parent->kids[parent->n++] = kid;
	return kid;
}

struct tnode *toml_get(const struct tnode *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->kids[i]->key, key))
			return t->kids[i];
	return NULL;
}

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

		if (c == ' ' || c == '\t' || (c == '\r' && t->s[t->i + 1] == '\n')) {
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

/* At a backslash in a basic string. */
static int tescape(struct toml *t, struct buf *b, struct qerr *err)
{
	static const char from[] = "\"\\bfnrte", to[] = "\"\\\b\f\n\r\t\033";
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
		return tfail(t, err, "unknown escape \\%c in a string", c > ' ' && c < 0x7f ? c : '?');
	{
		size_t n = c == 'u' ? 4 : 8;
		char hex[9] = {0};

		memcpy(hex, t->s + t->i + 1, strnlen(t->s + t->i + 1, n));
		cp = strtoul(hex, &end, 16);
		if (strlen(hex) != n || *end || strspn(hex, "0123456789abcdefABCDEF") != n || cp == 0 ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			return tfail(t, err, "bad \\%s escape", c == 'u' ? "u" : "U");
		put_utf8(b, cp);
		t->i += 1 + n;
	}
	return 0;
}

/* In a multi-line basic string, at a backslash: true (and skipped) when it ends the line. */
static bool tline_ending_backslash(struct toml *t)
{
	size_t k = t->i + 1;

	while (t->s[k] == ' ' || t->s[k] == '\t' || (t->s[k] == '\r' && t->s[k + 1] == '\n'))
		k++;
	if (t->s[k] != '\n')
		return false;
	t->i = k;
	while (t->s[t->i] == ' ' || t->s[t->i] == '\t' || t->s[t->i] == '\r' || t->s[t->i] == '\n')
		t->line += t->s[t->i++] == '\n';
	return true;
}

/* At the closing quote(s) of a string: true (and past them) when the string ends here. A multi-line string
   ends at three quotes; up to two more just before them belong to it. */
static bool tstring_end(struct toml *t, struct buf *b, char q, bool multi)
{
	size_t run = 0;

	if (!multi) {
		t->i++;
		return true;
	}
	while (t->s[t->i + run] == q)
		run++;
	if (run < 3)
		return false;
	if (run > 5)
		run = 5; /* the rest is what follows the string: an error there */
	for (size_t k = 3; k < run; k++)
		buf_append(b, &q, 1);
	t->i += run;
	return true;
}

/* A "basic", 'literal', """multi-line basic""" or '''multi-line literal''' string. */
static int tstring(struct toml *t, char **out, bool allow_multi, struct qerr *err)
{
	char q = t->s[t->i];
	bool multi = t->s[t->i + 1] == q && t->s[t->i + 2] == q;
	struct buf b = {0};

	if (multi && !allow_multi)
		return tfail(t, err, "a key cannot be a multi-line string");
	buf_append(&b, "", 0);
	t->i += multi ? 3 : 1;
	if (multi && t->s[t->i] == '\r' && t->s[t->i + 1] == '\n')
		t->i++;
	if (multi && t->s[t->i] == '\n')
		t->i++, t->line++; /* a newline right after the opening quotes is not part of the string */
	for (;;) {
		char c = t->s[t->i];

		if (c == q && tstring_end(t, &b, q, multi))
			break;
		if (c == '\0' || (c == '\n' && !multi)) {
			buf_free(&b);
			return tfail(t, err, "unterminated string");
		}
		if (((unsigned char)c < 0x20 && c != '\t' && c != '\n' &&
		     !(multi && c == '\r' && t->s[t->i + 1] == '\n')) ||
		    c == 0x7f) {
			buf_free(&b);
			return tfail(t, err, "control character in a string");
		}
		if (c == '\\' && q == '"') {
			if (multi && tline_ending_backslash(t))
				continue;
			if (tescape(t, &b, err) < 0) {
				buf_free(&b);
				return -1;
			}
			continue;
		}
		t->line += c == '\n';
		buf_append(&b, &c, 1);
		t->i++;
	}
	if (strlen(b.p) != b.len) {
		buf_free(&b);
		return tfail(t, err, "a string holds a NUL character");
	}
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
		return tstring(t, out, false, err);
	while (is_bare(t->s[t->i]))
		t->i++;
	if (t->i == start)
		return tfail(t, err, "expected a key, a [table] or an [[array of tables]]");
	*out = xstrndup(t->s + start, t->i - start);
	return 0;
}

/* key or key.key.key (spaces around the dots allowed). */
static int tkeypath(struct toml *t, struct strv *path, struct qerr *err)
{
	for (;;) {
		char *k;

		tskip(t, false);
		if (path->n == TOML_DEPTH)
			return tfail(t, err, "a dotted key of more than %d parts", TOML_DEPTH);
		if (tkey(t, &k, err) < 0)
			return -1;
		strv_push_take(path, k);
		tskip(t, false);
		if (t->s[t->i] != '.')
			return 0;
		t->i++;
	}
}

static char *keypath_join(const struct strv *path)
{
	struct buf b = {0};

	buf_append(&b, "", 0);
	for (size_t i = 0; i < path->n; i++)
		buf_printf(&b, "%s%s", i ? "." : "", path->v[i]);
	return b.p;
}

static int tvalue(struct toml *t, struct tnode **out, struct qerr *err);

/* Put val under the dotted key path in tbl, making the tables between (val is freed on failure). */
static int tset(struct toml *t, struct tnode *tbl, const struct strv *path, struct tnode *val, int line,
                struct qerr *err)
{
	autofree char *name = keypath_join(path);

	for (size_t i = 0; i + 1 < path->n; i++) {
		struct tnode *k = toml_get(tbl, path->v[i]);

		if (!k) {
			k = tnode_add(tbl, tnode_new(TK_TABLE, TH_DOTTED, path->v[i], line));
		} else if (k->kind != TK_TABLE || (k->how != TH_DOTTED && k->how != TH_IMPLICIT)) {
			toml_free(val);
			return tfail(t, err, "%s: \"%s\" is already defined on line %d", name, path->v[i], k->line);
		}
		tbl = k;
	}
	{
		struct tnode *old = toml_get(tbl, path->v[path->n - 1]);

		if (old) {
			toml_free(val);
			return tfail(t, err, "%s given twice (first on line %d)", name, old->line);
		}
	}
	free(val->key);
	val->key = xstrdup(path->v[path->n - 1]);
	val->line = line;
	tnode_add(tbl, val);
	return 0;
}

/* [ value, value, ] on any number of lines, with comments. */
static int tarray(struct toml *t, struct tnode *arr, struct qerr *err)
{
	t->i++;
	for (;;) {
		struct tnode *v;

		tskip(t, true);
		if (t->s[t->i] == ']') {
			t->i++;
			return 0;
		}
		if (tvalue(t, &v, err) < 0)
			return -1;
		tnode_add(arr, v);
		tskip(t, true);
		if (t->s[t->i] == ',')
			t->i++;
		else if (t->s[t->i] != ']')
			return tfail(t, err, "expected , or ] in an array");
	}
}

/* { key = value, key.key = value } on one line. */
static int tinline(struct toml *t, struct tnode *tbl, struct qerr *err)
{
	t->i++;
	tskip(t, false);
	if (t->s[t->i] == '}') {
		t->i++;
		return 0;
	}
	for (;;) {
		struct strv path = {0};
		struct tnode *v;
		int line = t->line, rc;

		if (t->s[t->i] == '\n' || (t->s[t->i] == '\r' && t->s[t->i + 1] == '\n'))
			return tfail(t, err, "an inline table must fit on one line");
		if (tkeypath(t, &path, err) < 0) {
			strv_free(&path);
			return -1;
		}
		if (t->s[t->i] != '=') {
			strv_free(&path);
			return tfail(t, err, "expected = after a key in an inline table");
		}
		t->i++;
		tskip(t, false);
		rc = tvalue(t, &v, err);
		if (rc == 0)
			rc = tset(t, tbl, &path, v, line, err);
		strv_free(&path);
		if (rc < 0)
			return -1;
		tskip(t, false);
		if (t->s[t->i] == '}') {
			t->i++;
			return 0;
		}
		if (t->s[t->i] != ',')
			return tfail(t, err, "expected , or } in an inline table (it must fit on one line)");
		t->i++;
		tskip(t, false);
		if (t->s[t->i] == '}')
			return tfail(t, err, "a trailing comma is not allowed in an inline table");
	}
}

/* A value: a string, true or false, an array or an inline table. No numbers or dates: no key takes one. */
static int tvalue(struct toml *t, struct tnode **out, struct qerr *err)
{
	const char *p = t->s + t->i;
	struct tnode *v;
	int rc = 0;

	*out = NULL;
	if (*p == '"' || *p == '\'') {
		v = tnode_new(TK_STR, TH_VALUE, NULL, t->line);
		rc = tstring(t, &v->str, true, err);
	} else if (*p == '[' || *p == '{') {
		if (++t->depth > TOML_DEPTH)
			return tfail(t, err, "arrays and inline tables nested more than %d deep", TOML_DEPTH);
		v = tnode_new(*p == '[' ? TK_ARRAY : TK_TABLE, *p == '[' ? TH_VALUE : TH_INLINE, NULL, t->line);
		rc = *p == '[' ? tarray(t, v, err) : tinline(t, v, err);
		t->depth--;
	} else if (strncmp(p, "true", 4) == 0 && !is_bare(p[4])) {
		v = tnode_new(TK_BOOL, TH_VALUE, NULL, t->line);
		v->b = true, t->i += 4;
	} else if (strncmp(p, "false", 5) == 0 && !is_bare(p[5])) {
		v = tnode_new(TK_BOOL, TH_VALUE, NULL, t->line);
		t->i += 5;
	} else {
		return tfail(t, err, "expected a string, true, false, an array or an inline table");
	}
	if (rc < 0) {
		toml_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

/* [a.b] or [[a.b]]: the table the following keys go to. */
static int theader(struct toml *t, struct tnode *root, struct tnode **cur, struct qerr *err)
{
	bool aot = t->s[t->i + 1] == '[';
	struct strv path = {0};
	autofree char *name = NULL;
	struct tnode *tbl = root, *k;
	int rc = 0;

	t->i += aot ? 2 : 1;
	if (tkeypath(t, &path, err) < 0) {
		strv_free(&path);
		return -1;
	}
	name = keypath_join(&path);
	if (t->s[t->i] != ']' || (aot && t->s[t->i + 1] != ']'))
		rc = tfail(t, err, "unterminated table header [%s", name);
	for (size_t i = 0; rc == 0 && i + 1 < path.n; i++) {
		k = toml_get(tbl, path.v[i]);
		if (!k)
			k = tnode_add(tbl, tnode_new(TK_TABLE, TH_IMPLICIT, path.v[i], t->line));
		else if (k->kind == TK_ARRAY && k->how == TH_AOT)
			k = k->kids[k->n - 1];
		else if (k->kind != TK_TABLE || k->how == TH_INLINE)
			rc = tfail(t, err, "[%s]: \"%s\" is not a table (line %d)", name, path.v[i], k->line);
		tbl = k;
	}
	if (rc == 0) {
		t->i += aot ? 2 : 1;
		k = toml_get(tbl, path.v[path.n - 1]);
		if (aot && !k)
			k = tnode_add(tbl, tnode_new(TK_ARRAY, TH_AOT, path.v[path.n - 1], t->line));
		if (aot && (k->kind != TK_ARRAY || k->how != TH_AOT))
			rc = tfail(t, err, "[[%s]]: already defined on line %d as something else", name, k->line);
		else if (aot)
			*cur = tnode_add(k, tnode_new(TK_TABLE, TH_HEADER, NULL, t->line));
		else if (!k)
			*cur = tnode_add(tbl, tnode_new(TK_TABLE, TH_HEADER, path.v[path.n - 1], t->line));
		else if (k->kind == TK_TABLE && k->how == TH_IMPLICIT)
			k->how = TH_HEADER, k->line = t->line, *cur = k;
		else
			rc = tfail(t, err, "[%s] is already defined on line %d", name, k->line);
	}
	strv_free(&path);
	return rc;
}

static int tassign(struct toml *t, struct tnode *cur, struct qerr *err)
{
	struct strv path = {0};
	struct tnode *v;
	int line = t->line, rc;

	rc = tkeypath(t, &path, err);
	if (rc == 0 && t->s[t->i] != '=')
		rc = tfail(t, err, "expected = after \"%s\"", path.v[path.n - 1]);
	if (rc == 0) {
		t->i++;
		tskip(t, false);
		rc = tvalue(t, &v, err);
	}
	if (rc == 0)
		rc = tset(t, cur, &path, v, line, err);
	strv_free(&path);
	return rc;
}

static int tparse(struct toml *t, struct tnode *root, struct qerr *err)
{
	struct tnode *cur = root;

	for (;;) {
		tskip(t, true);
		if (!t->s[t->i])
			return 0;
		if (t->s[t->i] == '[') {
			if (theader(t, root, &cur, err) < 0)
				return -1;
		} else if (tassign(t, cur, err) < 0) {
			return -1;
		}
		tskip(t, false);
		if (t->s[t->i] && t->s[t->i] != '\n')
			return tfail(t, err, "unexpected text after the value");
	}
}

struct tnode *toml_parse(const char *text, const char *path, struct qerr *err)
{
	struct toml t = {text, path, 0, 1, 0};
	struct tnode *root = tnode_new(TK_TABLE, TH_HEADER, NULL, 1);

	if (tparse(&t, root, err) < 0) {
		toml_free(root);
		return NULL;
	}
	return root;
}
