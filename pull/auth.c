/* Registry auth pieces that need no network: WWW-Authenticate challenges, credential files, token answers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "internal.h"

#define WWWAUTH_MAX (16 << 10)

/* ---- WWW-Authenticate (RFC 7235: challenges of a scheme and auth-params, token or quoted-string values) ---- */

struct wa {
	const char *s;
	size_t i;
};

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_token68_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("-._~+/", ch));
}

static void wa_skip_ows(struct wa *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
		p->i++;
}

/* Unquoted values: RFC 7235 says token, but realms are URLs; accept any visible char but , and " */
static bool is_value_char(char ch)
{
	return (unsigned char)ch > 0x20 && ch != 0x7f && ch != ',' && ch != '"';
}

static size_t wa_token(struct wa *p)
{
	size_t start = p->i;

	while (is_tchar(p->s[p->i]))
		p->i++;
	return p->i - start;
}

/* At "name = value"? (value starts with a quote or a tchar; a token68 such as "abc==" is not a param) */
static bool wa_at_param(const struct wa *p)
{
	struct wa q = *p;

	if (wa_token(&q) == 0)
		return false;
	wa_skip_ows(&q);
	if (q.s[q.i] != '=')
		return false;
	q.i++;
	wa_skip_ows(&q);
	return q.s[q.i] == '"' || (is_value_char(q.s[q.i]) && q.s[q.i] != '=');
}

static int wa_error(const struct wa *p, const char *why, struct qerr *err)
{
	autofree char *m = printable(p->s, 200);
	return qerr_set(err, "malformed WWW-Authenticate header (%s at offset %zu): %s", why, p->i, m);
}

static int wa_quoted(struct wa *p, char **out, struct qerr *err)
{
	struct buf b = {0};

	p->i++; /* opening quote */
	for (;;) {
		char ch = p->s[p->i];

		if (ch == '\\' && p->s[p->i + 1]) {
			ch = p->s[++p->i];
		} else if (ch == '"') {
			p->i++;
			break;
		} else if (ch == '\0') {
			buf_free(&b);
			return wa_error(p, "unterminated quoted string", err);
		}
		if ((unsigned char)ch < 0x20 && ch != '\t') {
			buf_free(&b);
			return wa_error(p, "control character", err);
		}
		if (ch == 0x7f) {
			buf_free(&b);
			return wa_error(p, "control character", err);
		}
		buf_append(&b, &ch, 1);
		p->i++;
	}
	buf_append(&b, "", 1);
	*out = b.p;
	return 0;
}

static int wa_value(struct wa *p, char **out, struct qerr *err)
{
	size_t start = p->i, n;

	if (p->s[p->i] == '"')
		return wa_quoted(p, out, err);
	while (is_value_char(p->s[p->i]))
		p->i++;
	n = p->i - start;
	if (n == 0)
		return wa_error(p, "missing value", err);
	*out = xstrndup(p->s + start, n);
	return 0;
}

static int wa_assign(struct wa *p, struct auth_challenge *c, const char *name, size_t n, char *value, struct qerr *err)
{
	char **slot = NULL;

	if (n == 5 && strncasecmp(name, "realm", 5) == 0)
		slot = &c->realm;
	else if (n == 7 && strncasecmp(name, "service", 7) == 0)
		slot = &c->service;
	else if (n == 5 && strncasecmp(name, "scope", 5) == 0)
		slot = &c->scope;
	if (!slot) {
		free(value);
		return 0;
	}
	if (*slot) {
		free(value);
		return wa_error(p, "duplicate parameter", err);
	}
	*slot = value;
	return 0;
}

static int wa_param(struct wa *p, struct auth_challenge *c, struct qerr *err)
{
	const char *name = p->s + p->i;
	size_t n = wa_token(p);
	char *value = NULL;

	wa_skip_ows(p);
	p->i++; /* '=' (checked by wa_at_param) */
	wa_skip_ows(p);
	if (wa_value(p, &value, err) < 0)
		return -1;
	return wa_assign(p, c, name, n, value, err);
}

/* After a value or token68: end, or a comma followed by more. Returns 1 when the next item is a param. */
static int wa_after_item(struct wa *p, struct qerr *err)
{
	wa_skip_ows(p);
	if (p->s[p->i] == '\0')
		return 0;
	if (p->s[p->i] != ',')
		return wa_error(p, "expected a comma", err);
	while (p->s[p->i] == ',' || p->s[p->i] == ' ' || p->s[p->i] == '\t')
		p->i++;
	return wa_at_param(p) ? 1 : 0;
}

/* The params (or token68) of one challenge, up to the next challenge or the end. */
static int wa_params(struct wa *p, struct auth_challenge *c, struct qerr *err)
{
	int more;

	wa_skip_ows(p);
	if (!wa_at_param(p)) {
		while (is_token68_char(p->s[p->i]))
			p->i++;
		while (p->s[p->i] == '=')
			p->i++;
		return wa_after_item(p, err) < 0 ? -1 : 0;
	}
	do {
		if (wa_param(p, c, err) < 0)
			return -1;
		more = wa_after_item(p, err);
	} while (more == 1);
	return more;
}

static enum auth_scheme wa_scheme(const char *s, size_t n)
{
	if (n == 6 && strncasecmp(s, "bearer", 6) == 0)
		return AUTH_BEARER;
	if (n == 5 && strncasecmp(s, "basic", 5) == 0)
		return AUTH_BASIC;
	return AUTH_NONE;
}

/* Keep the better of *best and *cur (Bearer over Basic over anything else); frees the other. */
static void wa_keep(struct auth_challenge *best, struct auth_challenge *cur)
{
	if (cur->scheme != AUTH_NONE &&
	    (best->scheme == AUTH_NONE || (cur->scheme == AUTH_BEARER && best->scheme != AUTH_BEARER))) {
		auth_challenge_free(best);
		*best = *cur;
	} else {
		auth_challenge_free(cur);
	}
	memset(cur, 0, sizeof(*cur));
}

int wwwauth_parse(const char *hdr, struct auth_challenge *c, struct qerr *err)
{
	struct wa p = {hdr ? hdr : "", 0};
	struct auth_challenge best = {0}, cur = {0};

	memset(c, 0, sizeof(*c));
	if (strlen(p.s) > WWWAUTH_MAX)
		return qerr_set(err, "WWW-Authenticate header longer than %d bytes", WWWAUTH_MAX);
	for (;;) {
		const char *name;
		size_t n;

		while (p.s[p.i] == ',' || p.s[p.i] == ' ' || p.s[p.i] == '\t')
			p.i++;
		if (p.s[p.i] == '\0')
			break;
		name = p.s + p.i;
		n = wa_token(&p);
		if (n == 0 || (p.s[p.i] && p.s[p.i] != ' ' && p.s[p.i] != '\t' && p.s[p.i] != ',')) {
			auth_challenge_free(&best);
			return wa_error(&p, "expected an auth scheme", err);
		}
		cur.scheme = wa_scheme(name, n);
		if (wa_params(&p, &cur, err) < 0) {
			auth_challenge_free(&cur);
			auth_challenge_free(&best);
			return -1;
		}
		wa_keep(&best, &cur);
	}
	if (best.scheme == AUTH_NONE) {
		autofree char *m = printable(p.s, 200);
		return qerr_set(err, "no supported authentication scheme (Bearer, Basic) in WWW-Authenticate: %s", m);
	}
	if (best.scheme == AUTH_BEARER && (!best.realm || !*best.realm)) {
		auth_challenge_free(&best);
		return qerr_set(err, "WWW-Authenticate: Bearer challenge without a realm");
	}
	*c = best;
	return 0;
}

void auth_challenge_free(struct auth_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

/* ---- base64 (RFC 4648, padding optional on input) ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v =
		    (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);

		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Decode s (NUL-terminated result); NULL when s is not base64. */
static char *b64_decode(const char *s, size_t *len_out)
{
	size_t n = strlen(s), o = 0;
	char *out;
	unsigned v = 0;
	int bits = 0;

	while (n > 0 && s[n - 1] == '=')
		n--;
	out = xmalloc(n * 3 / 4 + 2);
	for (size_t i = 0; i < n; i++) {
		const char *c = s[i] ? strchr(b64chars, s[i]) : NULL;

		if (!c) {
			free(out);
			return NULL;
		}
		v = v << 6 | (unsigned)(c - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(v >> bits & 0xff);
		}
	}
	out[o] = '\0';
	*len_out = o;
	return out;
}

char *basic_auth_value(const struct credentials *c)
{
	autofree char *up = xasprintf("%s:%s", c->user, c->pass);
	autofree char *b = b64_encode((const unsigned char *)up, strlen(up));

	return xasprintf("Basic %s", b);
}

/* ---- credential files (containers-auth.json(5), docker config.json) ---- */

/* "https://index.docker.io/v1/" -> "docker.io"; "Host:5000/ns" keeps its path (namespaced entries). */
static char *authkey_normalize(const char *key)
{
	char *k, *slash;
	bool had_scheme = false;

	if (strncasecmp(key, "https://", 8) == 0 || strncasecmp(key, "http://", 7) == 0) {
		key = strstr(key, "://") + 3;
		had_scheme = true;
	}
	k = xstrdup(key);
	slash = strchr(k, '/');
	if (slash && had_scheme)
		*slash = '\0';
	for (char *p = k; *p && p != slash; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (strncmp(k, "index.docker.io", 15) == 0 && (k[15] == '\0' || k[15] == '/')) {
		char *t = xasprintf("docker.io%s", k + 15);
		free(k);
		k = t;
	} else if (strncmp(k, "registry-1.docker.io", 20) == 0 && (k[20] == '\0' || k[20] == '/')) {
		char *t = xasprintf("docker.io%s", k + 20);
		free(k);
		k = t;
	}
	return k;
}

/* How well key matches domain/path: 0 not at all, else the length of the match (longer = more specific). */
static size_t authkey_score(const char *key, const char *domain, const char *path)
{
	size_t dn = strlen(domain), kn = strlen(key);

	if (strncasecmp(key, domain, dn) != 0)
		return 0;
	if (key[dn] == '\0')
		return dn;
	if (key[dn] != '/' || !path)
		return 0;
	if (strncmp(key + dn + 1, path, kn - dn - 1) == 0 && (path[kn - dn - 1] == '\0' || path[kn - dn - 1] == '/'))
		return kn;
	return 0;
}

/* Credentials of one auths entry: 1 found, 0 the entry has none (e.g. a credential helper), -1 bad entry. */
static int auth_entry(json_t *e, const char *key, struct credentials *c, struct qerr *err)
{
	const char *auth = json_string_value(json_object_get(e, "auth"));
	const char *user = json_string_value(json_object_get(e, "username"));
	const char *pass = json_string_value(json_object_get(e, "password"));
	const char *idt = json_string_value(json_object_get(e, "identitytoken"));
	autofree char *dec = NULL;
	size_t len = 0;
	char *colon;

	if (idt && *idt) { /* docker sends the identity token whenever there is one, whatever "auth" holds */
		c->identity_token = xstrdup(idt);
		return 1;
	}
	if (auth && *auth) {
		dec = b64_decode(auth, &len);
		colon = dec && strlen(dec) == len ? strchr(dec, ':') : NULL;
		if (!colon) {
			autofree char *k = printable(key, 100);
			return qerr_set(err, "auths[\"%s\"].auth is not base64 of user:password", k);
		}
		*colon = '\0';
		c->user = xstrdup(dec);
		c->pass = xstrdup(colon + 1);
		return 1;
	}
	if (user && pass && *user) {
		c->user = xstrdup(user);
		c->pass = xstrdup(pass);
		return 1;
	}
	return 0;
}

/* The usable entry of auths matching domain/path most specifically (NULL when none); its key in *key_out. */
static json_t *auth_best(json_t *auths, const char *dom, const char *path, const char **key_out)
{
	json_t *best = NULL;
	size_t best_score = 0;

	for (void *it = json_object_iter(auths); it; it = json_object_iter_next(auths, it)) {
		const char *key = json_object_iter_key(it);
		json_t *e = json_object_iter_value(it);
		autofree char *k = authkey_normalize(key);
		size_t score = json_is_object(e) ? authkey_score(k, dom, path) : 0;
		struct credentials probe = {0};
		struct qerr ignored;

		if (score > best_score && auth_entry(e, key, &probe, &ignored) == 1) {
			best = e;
			*key_out = key;
			best_score = score;
		}
		credentials_free(&probe);
	}
	return best;
}

/* -1 (err set) when an entry for domain/path is malformed: the user meant it, so say so. */
static int auth_check_malformed(json_t *auths, const char *dom, const char *path, struct qerr *err)
{
	for (void *it = json_object_iter(auths); it; it = json_object_iter_next(auths, it)) {
		const char *key = json_object_iter_key(it);
		json_t *e = json_object_iter_value(it);
		autofree char *k = authkey_normalize(key);
		struct credentials probe = {0};
		int rc = 0;

		if (json_is_object(e) && authkey_score(k, dom, path))
			rc = auth_entry(e, key, &probe, err);
		credentials_free(&probe);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int authfile_parse(const char *jsontext, size_t len, const char *domain, const char *path, struct credentials *c,
                   struct qerr *err)
{
	json_t *j = pjson_parse_object(jsontext, len, "credentials file", err), *auths, *best;
	autofree char *dom = authkey_normalize(domain);
	const char *key = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!j)
		return -1;
	auths = json_object_get(j, "auths");
	best = auth_best(auths, dom, path, &key);
	rc = best ? auth_entry(best, key, c, err) : auth_check_malformed(auths, dom, path, err);
	json_decref(j);
	return rc;
}

void credentials_free(struct credentials *c)
{
	if (c->pass)
		explicit_bzero(c->pass, strlen(c->pass));
	if (c->identity_token)
		explicit_bzero(c->identity_token, strlen(c->identity_token));
	free(c->user);
	free(c->pass);
	free(c->identity_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

char *authfile_helper(const char *jsontext, size_t len, const char *domain)
{
	struct qerr ignored;
	json_t *j = pjson_parse_object(jsontext, len, "credentials file", &ignored), *helpers;
	autofree char *dom = authkey_normalize(domain);
	const char *store;
	char *name = NULL;

	if (!j)
		return NULL; /* authfile_parse reports it */
	helpers = json_object_get(j, "credHelpers");
	for (void *it = json_object_iter(helpers); it && !name; it = json_object_iter_next(helpers, it)) {
		autofree char *k = authkey_normalize(json_object_iter_key(it));
		const char *v = json_string_value(json_object_iter_value(it));

		if (v && *v && strcasecmp(k, dom) == 0)
			name = xstrdup(v);
	}
	store = json_string_value(json_object_get(j, "credsStore"));
	if (!name && store && *store)
		name = xstrdup(store);
	json_decref(j);
	return name;
}

/* Credentials from the helper the file names for domain (docker's order: credHelpers, credsStore, auths). */
static int creds_from_helper(const char *file, const char *text, size_t len, const char *domain, struct credentials *c,
                             struct qerr *err)
{
	autofree char *helper = authfile_helper(text, len, domain);
	int rc = helper ? credhelper_get(helper, domain, c, err) : 0;

	if (rc == 1) {
		free(c->source);
		c->source = xasprintf("docker-credential-%s (named in %s)", helper, file);
	}
	return rc;
}

/* 1 found, 0 none (or, unless must, no such file), -1 error. */
static int creds_from_file(const char *file, bool must, const char *domain, const char *path, struct credentials *c,
                           struct qerr *err)
{
	size_t len = 0;
	autofree char *text = read_file_at(AT_FDCWD, file, AUTHFILE_MAX, &len, err);
	int rc;

	if (!text) {
		if (!must && (err->code == ENOENT || err->code == ENOTDIR))
			return 0;
		return qerr_wrap(err, "credentials: ");
	}
	rc = creds_from_helper(file, text, len, domain, c, err);
	if (rc == 0) {
		rc = authfile_parse(text, len, domain, path, c, err);
		if (rc == 1)
			c->source = xstrdup(file);
	}
	explicit_bzero(text, len);
	if (rc < 0)
		return qerr_wrap(err, "%s: ", file);
	return rc;
}

/* The auth files: auth_file, else $REGISTRY_AUTH_FILE, else each of the usual places. */
static int creds_from_authfiles(const char *auth_file, const char *domain, const char *path, struct credentials *c,
                                struct qerr *err)
{
	const char *env = getenv("REGISTRY_AUTH_FILE");
	const char *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
	char *cand[3] = {NULL, NULL, NULL};
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (auth_file && *auth_file)
		return creds_from_file(auth_file, true, domain, path, c, err);
	if (env && *env)
		return creds_from_file(env, true, domain, path, c, err);
	if (xdg && *xdg)
		cand[0] = xasprintf("%s/containers/auth.json", xdg);
	if (home && *home) {
		cand[1] = xasprintf("%s/.config/containers/auth.json", home);
		cand[2] = xasprintf("%s/.docker/config.json", home);
	}
	for (size_t i = 0; i < 3 && rc == 0; i++)
		if (cand[i])
			rc = creds_from_file(cand[i], false, domain, path, c, err);
	for (size_t i = 0; i < 3; i++)
		free(cand[i]);
	return rc;
}

/* registries.conf's credential-helpers in order (default: the auth files alone, "containers-auth.json"); as
   podman does, a helper that fails is passed over, and its error is the answer only when no other has
   credentials. */
int auth_creds_find(const char *auth_file, const char *domain, const char *path, struct credentials *c, struct qerr *err)
{
	struct regconf conf;
	struct qerr first = {0};
	size_t n;
	int found = 0;

	memset(c, 0, sizeof(*c));
	if (regconf_load(&conf, err) < 0)
		return -1;
	n = conf.cred_helpers.n ? conf.cred_helpers.n : 1;
	for (size_t i = 0; i < n && found <= 0; i++) {
		const char *h = conf.cred_helpers.n ? conf.cred_helpers.v[i] : REGCONF_AUTH_FILES;
		struct qerr e = {0};

		found = !strcmp(h, REGCONF_AUTH_FILES) ? creds_from_authfiles(auth_file, domain, path, c, &e)
		                                       : credhelper_get(h, domain, c, &e);
		if (found < 0 && !first.msg[0])
			first = e;
		if (found < 0)
			credentials_free(c);
		if (found == 1 && strcmp(h, REGCONF_AUTH_FILES)) {
			free(c->source);
			c->source = xasprintf("docker-credential-%s (credential-helpers in registries.conf)", h);
		}
	}
	regconf_free(&conf);
	if (found == 1)
		return 1;
	if (first.msg[0]) {
		*err = first;
		return -1;
	}
	return 0;
}

/* ---- token endpoint answers ---- */

int token_parse(const char *jsontext, size_t len, char **token, struct qerr *err)
{
	json_t *j = pjson_parse_object(jsontext, len, "token answer", err);
	const char *t;

	*token = NULL;
	if (!j)
		return -1;
	t = json_string_value(json_object_get(j, "token"));
	if (!t || !*t)
		t = json_string_value(json_object_get(j, "access_token"));
	if (!t || !*t) {
		json_decref(j);
		return qerr_set(err, "token answer has neither \"token\" nor \"access_token\"");
	}
	for (const char *p = t; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			json_decref(j);
			return qerr_set(err, "token answer: token contains a character not allowed in a header");
		}
	}
	*token = xstrdup(t);
	json_decref(j);
	return 0;
}
