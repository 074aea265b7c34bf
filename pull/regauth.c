/* The registry client's auth flow: stored credentials, Basic, and Bearer tokens from the challenge's realm (GET,
   or the OAuth2 POST for identity tokens). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "registry_int.h"

/* ---- auth ---- */

static int creds_load(struct registry *r, struct qerr *err)
{
	int rc;

	if (r->creds_state != 0)
		return 0;
	rc = auth_creds_find(r->o->auth_file, r->domain, r->repo, &r->creds, err);
	if (rc < 0)
		return -1;
	r->creds_state = rc == 1 ? 1 : -1;
	if (rc == 1)
		log_info("using credentials for %s from %s", r->domain, r->creds.source);
	return 0;
}

static void authz_set(struct registry *r, char *value, bool from_creds)
{
	if (r->authz) {
		explicit_bzero(r->authz, strlen(r->authz));
		free(r->authz);
	}
	r->authz = xasprintf("Authorization: %s", value);
	explicit_bzero(value, strlen(value));
	free(value);
	r->creds_sent = from_creds;
	r->auth_gen++;
}

static int auth_basic(struct registry *r, struct qerr *err)
{
	if (r->creds_state != 1)
		return qerr_set(err, "401 Unauthorized (authentication required; no credentials for %s found)",
		                r->domain);
	if (!r->creds.user || !r->creds.pass)
		return qerr_set(err,
		                "401 Unauthorized: the credentials for %s are an identity token, which only a "
		                "token server (Bearer) accepts, and %s asks for Basic",
		                r->domain, r->domain);
	authz_set(r, basic_auth_value(&r->creds), true);
	return 0;
}

/* Append each space-separated scope as its own scope= parameter (as docker does). */
static int realm_add_query(CURLU *u, const char *name, const char *value)
{
	autofree char *copy = xstrdup(value);
	char *save = NULL;

	for (char *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
		autofree char *q = xasprintf("%s=%s", name, s);
		if (curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
			return -1;
	}
	return 0;
}

/* What the token is asked for: the challenge's scope, else pull of the repository (none for `qimg login`). */
static char *token_scope(const struct registry *r, const struct auth_challenge *c)
{
	return c->scope && *c->scope ? xstrdup(c->scope) : *r->repo ? xasprintf("repository:%s:pull", r->repo) : NULL;
}

/* The token URL: the challenge's realm (https, unless TLS verification is off; no userinfo) + service, scope. */
static char *realm_url(struct registry *r, const struct auth_challenge *c, struct qerr *err)
{
	CURLU *u = curl_url();
	autofree char *scheme = NULL, *user = NULL, *host = NULL, *p = printable(c->realm, 200);
	autofree char *scope = token_scope(r, c);
	char *url = NULL;

	if (!u || curl_url_set(u, CURLUPART_URL, c->realm, 0) != CURLUE_OK) {
		qerr_set(err, "token realm \"%s\" is not a URL", p);
		goto out;
	}
	scheme = url_get(u, CURLUPART_SCHEME, 0);
	user = url_get(u, CURLUPART_USER, 0);
	host = url_get(u, CURLUPART_HOST, 0);
	if (!scheme || !host || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
		qerr_set(err, "token realm \"%s\" is not an http(s) URL", p);
	else if (strcmp(scheme, "http") == 0 && !r->o->tls_verify_off)
		qerr_set(err,
		         "token realm \"%s\" is plain HTTP; credentials and tokens only go over HTTPS "
		         "(use --tls-verify=false to allow it)",
		         p);
	else if (user)
		qerr_set(err, "token realm \"%s\" carries credentials; refused", p);
	else if ((c->service && *c->service && realm_add_query(u, "service", c->service) < 0) ||
	         (scope && realm_add_query(u, "scope", scope) < 0))
		qerr_set(err, "token realm \"%s\": cannot add the query", p);
	else
		url = url_get(u, CURLUPART_URL, 0);
out:
	curl_url_cleanup(u);
	return url;
}

/* The OAuth2 refresh-token grant docker uses for identity tokens: POSTed to the realm, form-encoded. */
static char *token_form(struct registry *r, const struct auth_challenge *c)
{
	const char *fields[][2] = {
	    {"grant_type", "refresh_token"}, {"service", c->service ? c->service : ""},  {"client_id", "qimg"},
	    {"access_type", "offline"},      {"refresh_token", r->creds.identity_token}, {"scope", NULL}};
	autofree char *scope = token_scope(r, c);
	fields[5][1] = scope;
	struct buf b = {0};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (!fields[i][1])
			continue;
		char *v = curl_easy_escape(NULL, fields[i][1], 0);
		if (!v) {
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s%s=%s", b.len ? "&" : "", fields[i][0], v);
		curl_free(v);
	}
	return b.p;
}

static int auth_bearer(struct registry *r, const struct auth_challenge *c, struct qerr *err)
{
	struct xfer x;
	char *url = realm_url(r, c, err), *token = NULL;
	int rc = -1;

	if (!url)
		return -1;
	xfer_init(&x, r, XF_TOKEN, url);
	x.max = TOKEN_MAX;
	if (r->creds_state == 1 && r->creds.identity_token) {
		x.form = token_form(r, c);
		if (!x.form) {
			xfer_free(&x);
			return qerr_set(err, "token request: cannot encode the form");
		}
	} else if (r->creds_state == 1) {
		autofree char *b = basic_auth_value(&r->creds);
		x.basic = xasprintf("Authorization: %s", b);
		explicit_bzero(b, strlen(b));
	}
	if (xfer_run_easy(&x, err) == 0 && token_parse(x.mem.p, x.mem.len, &token, err) == 0) {
		authz_set(r, xasprintf("Bearer %s", token), r->creds_state == 1);
		explicit_bzero(token, strlen(token));
		free(token);
		rc = 0;
	} else if (!x.cb_failed && x.status >= 200 && x.status < 300) {
		autofree char *m = url_for_message(x.url);
		qerr_wrap(err, "%s %s: ", x.form ? "POST" : "GET", m);
	}
	if (x.mem.p)
		explicit_bzero(x.mem.p, x.mem.len);
	xfer_free(&x);
	return rc;
}

int registry_authenticate(struct registry *r, const char *hdr, struct qerr *err)
{
	struct auth_challenge c;
	int rc;

	if (!hdr)
		return qerr_set(err, "401 Unauthorized without a WWW-Authenticate challenge");
	if (wwwauth_parse(hdr, &c, err) < 0)
		return -1;
	if (creds_load(r, err) < 0) {
		auth_challenge_free(&c);
		return -1;
	}
	rc = c.scheme == AUTH_BASIC ? auth_basic(r, err) : auth_bearer(r, &c, err);
	auth_challenge_free(&c);
	return rc;
}
