/* The registry v2 HTTP client on libcurl: transfers with retries and own redirect handling (credentials never
   leave the registry's origin), blobs in parallel with curl multi. TLS per host: tls.c; the auth flow: regauth.c. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry_int.h"

#define HTTP_TRIES           4  /* attempts per request on 429/5xx/connection errors */
#define HTTP_TIMEOUT_DEFAULT 30 /* seconds: connect timeout and stall window (QIMG_HTTP_TIMEOUT) */
#define HTTP_TIMEOUT_MAX     3600
#define REDIRECTS_MAX        10
#define ERRBODY_MAX          (64 << 10) /* bytes of an error answer kept for the message */
#define HEADER_MAX           (16 << 10) /* longer header lines are ignored */
#define BACKOFF_FIRST        0.5        /* seconds; doubled per try */
#define BACKOFF_MAX          8.0
#define RETRY_AFTER_MAX      60          /* seconds we are willing to honour */
#define DL_BUFFER            (512 << 10) /* curl receive buffer for blobs */
#define USER_AGENT           "qimg/0.1"
#define PARALLEL_MAX         32
#define ACCEPT_MANIFESTS     MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

static double backoff_delay(const struct xfer *x);

/* ---- URLs and origins ---- */

char *url_get(CURLU *u, CURLUPart part, unsigned flags)
{
	char *v = NULL, *out;

	if (curl_url_get(u, part, &v, flags) != CURLUE_OK || !v)
		return NULL;
	out = xstrdup(v);
	curl_free(v);
	return out;
}

/* scheme, host and port (default port filled in) of an absolute http(s) URL; false when it is not one. */
bool url_origin(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u = curl_url();
	autofree char *p = NULL;
	bool ok = false;

	*scheme = *host = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		*scheme = url_get(u, CURLUPART_SCHEME, 0);
		*host = url_get(u, CURLUPART_HOST, 0);
		p = url_get(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
		ok = *scheme && *host && p && (!strcmp(*scheme, "https") || !strcmp(*scheme, "http"));
		*port = p ? strtol(p, NULL, 10) : 0;
	}
	curl_url_cleanup(u);
	if (!ok) {
		free(*scheme);
		free(*host);
		*scheme = *host = NULL;
	}
	return ok;
}

long default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

bool is_origin(const struct registry *r, const char *url)
{
	autofree char *scheme = NULL, *host = NULL;
	long port;

	if (!url_origin(url, &scheme, &host, &port))
		return false;
	return strcmp(scheme, r->scheme) == 0 && strcasecmp(host, r->host) == 0 &&
	       port == (r->port ? r->port : default_port(r->scheme));
}

/* Location resolved against base; NULL when it is not an http(s) URL. */
static char *url_resolve(const char *base, const char *loc)
{
	CURLU *u = curl_url();
	char *out = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK)
		out = url_get(u, CURLUPART_URL, 0);
	curl_url_cleanup(u);
	return out;
}

/* The URL without its query (presigned redirect URLs carry signatures that do not belong in messages). */
char *url_for_message(const char *url)
{
	return xstrndup(url, strcspn(url, "?#"));
}

static char *xfer_desc(const struct xfer *x)
{
	if (x->on_origin && x->redirects == 0 && x->path)
		return xasprintf("GET %s", x->path);
	autofree char *u = url_for_message(x->url ? x->url : "");
	return xasprintf("%s %s", x->form ? "POST" : "GET", u);
}

/* ---- one transfer ---- */

static void hdr_set(char **slot, const char *v, size_t n)
{
	free(*slot);
	*slot = xstrndup(v, n);
}

static void response_reset(struct xfer *x)
{
	char **h[] = {&x->location, &x->www_auth, &x->ctype, &x->dcd, &x->retry_after, &x->crange};

	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		free(*h[i]);
		*h[i] = NULL;
	}
	x->status = 0;
	x->body_seen = x->body_ok = false;
	x->mem.len = 0;
	x->errbody.len = 0;
}

static void header_store(struct xfer *x, const char *name, size_t nlen, const char *v, size_t vlen)
{
	if (nlen == 8 && strncasecmp(name, "location", 8) == 0)
		hdr_set(&x->location, v, vlen);
	else if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0)
		hdr_set(&x->ctype, v, vlen);
	else if (nlen == 21 && strncasecmp(name, "docker-content-digest", 21) == 0)
		hdr_set(&x->dcd, v, vlen);
	else if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0)
		hdr_set(&x->retry_after, v, vlen);
	else if (nlen == 13 && strncasecmp(name, "content-range", 13) == 0)
		hdr_set(&x->crange, v, vlen);
	else if (nlen == 16 && strncasecmp(name, "www-authenticate", 16) == 0) {
		/* several challenge headers combine into one list (RFC 9110 5.3) */
		char *prev = x->www_auth;
		x->www_auth = prev ? xasprintf("%s, %.*s", prev, (int)vlen, v) : xstrndup(v, vlen);
		free(prev);
	}
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb, vlen;
	const char *colon, *v;

	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		response_reset(x);
		return n;
	}
	if (n > HEADER_MAX || !(colon = memchr(p, ':', n)))
		return n;
	v = colon + 1;
	while (v < p + n && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + n - v);
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (memchr(v, '\0', vlen))
		return n;
	header_store(x, p, (size_t)(colon - p), v, vlen);
	return n;
}

/* First body bytes of a 2xx answer to a Range GET: 206 must continue where we are, 200 starts over. */
static int range_check(struct xfer *x, struct qerr *err)
{
	char want[48];

	if (x->range_from == 0)
		return x->status == 206 ? qerr_set(err, "unexpected 206 Partial Content") : 0;
	if (x->status == 200) {
		log_debug("registry ignored Range: downloading from the start");
		x->range_from = 0;
		return x->sink->restart(x->sink->ctx, err);
	}
	snprintf(want, sizeof(want), "bytes %lld-", (long long)x->range_from);
	if (!x->crange || strncmp(x->crange, want, strlen(want)) != 0)
		return qerr_set(err, "206 Partial Content with Content-Range \"%s\", expected \"%s...\"",
		                x->crange ? x->crange : "", want);
	return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (!x->body_seen) {
		x->body_seen = true;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
		x->body_ok = x->status >= 200 && x->status < 300;
		if (x->body_ok && x->sink && range_check(x, &x->cb_err) < 0)
			goto fail;
	}
	if (!x->body_ok) {
		if (x->errbody.len < ERRBODY_MAX)
			buf_append(&x->errbody, p, n < ERRBODY_MAX - x->errbody.len ? n : ERRBODY_MAX - x->errbody.len);
		return n;
	}
	if (x->sink) {
		if (x->sink->write(x->sink->ctx, p, n, &x->cb_err) < 0)
			goto fail;
		return n;
	}
	if (x->mem.len + n > x->max) {
		qerr_set(&x->cb_err, "answer larger than %zu bytes", x->max);
		goto fail;
	}
	buf_append(&x->mem, p, n);
	return n;
fail:
	x->cb_failed = true;
	return 0;
}

void xfer_init(struct xfer *x, struct registry *r, enum xfer_kind kind, char *url_or_path)
{
	memset(x, 0, sizeof(*x));
	x->r = r;
	x->kind = kind;
	x->on_origin = kind == XF_REGISTRY;
	if (kind == XF_REGISTRY)
		x->path = url_or_path;
	else
		x->url = url_or_path;
}

/* Release the curl handle of the last attempt. */
static void xfer_end(struct xfer *x)
{
	curl_easy_cleanup(x->h);
	x->h = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

void xfer_free(struct xfer *x)
{
	xfer_end(x);
	response_reset(x);
	free(x->path);
	free(x->url);
	if (x->basic)
		explicit_bzero(x->basic, strlen(x->basic));
	free(x->basic);
	if (x->form)
		explicit_bzero(x->form, strlen(x->form));
	free(x->form);
	buf_free(&x->mem);
	buf_free(&x->errbody);
}

static void xfer_add_header(struct xfer *x, const char *h)
{
	struct curl_slist *n = curl_slist_append(x->hdrs, h);

	if (!n) {
		log_msg(LOG_NORMAL, "qimg: out of memory\n");
		abort();
	}
	x->hdrs = n;
}

static void xfer_headers(struct xfer *x)
{
	struct registry *r = x->r;

	if (x->accept) {
		autofree char *a = xasprintf("Accept: %s", x->accept);
		xfer_add_header(x, a);
	}
	x->auth_gen = r->auth_gen;
	if (x->kind == XF_REGISTRY && x->on_origin && r->authz)
		xfer_add_header(x, r->authz);
	if (x->kind == XF_TOKEN && x->basic)
		xfer_add_header(x, x->basic);
	x->range_from = x->sink ? x->sink->held(x->sink->ctx) : 0;
	if (x->range_from > 0) {
		autofree char *rg = xasprintf("Range: bytes=%lld-", (long long)x->range_from);
		xfer_add_header(x, rg);
	}
}

static void xfer_setopts(struct xfer *x)
{
	CURL *h = x->h;

	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(h, CURLOPT_SHARE, x->r->share);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, x->r->timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, x->r->timeout);
	if (x->form)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->form); /* POST, application/x-www-form-urlencoded */
	if (x->sink) {
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)DL_BUFFER);
		/* A connection per blob: HTTP/2 would multiplex them all onto one TCP stream behind its flow-control
		   windows (a 49 MB blob from a loopback registry with curl(1): 0.41-0.51 s over h2, 0.21-0.38 s over
		   HTTP/1.1). */
		curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	}
}

/* A fresh curl handle for the next attempt. */
static int xfer_begin(struct xfer *x, struct qerr *err)
{
	struct registry *r = x->r;

	xfer_end(x);
	response_reset(x);
	x->cb_failed = false;
	x->errbuf[0] = '\0';
	x->waiting = false;
	if (x->on_origin && x->redirects == 0) {
		free(x->url);
		x->url = xasprintf("%s://%s%s", r->scheme, r->endpoint, x->path);
	}
	x->h = curl_easy_init();
	if (!x->h)
		return qerr_set(err, "curl_easy_init failed");
	xfer_headers(x);
	xfer_setopts(x);
	if (tls_apply(x, err) < 0)
		return -1;
	if (qlog_level >= LOG_DEBUG) {
		autofree char *u = url_for_message(x->url);
		char from[48] = "";

		if (x->range_from)
			snprintf(from, sizeof(from), " (from byte %lld)", (long long)x->range_from);
		log_debug("GET %s%s%s", u, from, x->on_origin && r->authz ? " [auth]" : "");
	}
	return 0;
}

/* ---- what to do after an attempt ---- */

static const char *status_text(long s)
{
	switch (s) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 416: return "Range Not Satisfiable";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return s >= 500 ? "Server Error" : "Error";
	}
}

static enum step xfer_fail_status(struct xfer *x, struct qerr *err)
{
	autofree char *desc = xfer_desc(x);
	autofree char *detail = registry_error_message(x->errbody.p, x->errbody.len);

	if (x->tries > 1)
		qerr_set(err, "%s: %ld %s%s%s%s (after %d tries)", desc, x->status, status_text(x->status),
		         detail ? " (" : "", detail ? detail : "", detail ? ")" : "", x->tries);
	else
		qerr_set(err, "%s: %ld %s%s%s%s", desc, x->status, status_text(x->status), detail ? " (" : "",
		         detail ? detail : "", detail ? ")" : "");
	return STEP_FAIL;
}

static bool neterror_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_WRITE_ERROR:
	case CURLE_ABORTED_BY_CALLBACK: return false;
	default: return true;
	}
}

static const char *neterror_hint(CURLcode rc)
{
	if (rc == CURLE_PEER_FAILED_VERIFICATION)
		return " (certificate not trusted: put the registry's CA in certs.d/HOST:PORT/ca.crt, or use "
		       "--tls-verify=false)";
	if (rc == CURLE_SSL_CONNECT_ERROR)
		return " (TLS handshake failed: is it a plain-HTTP registry? then use --tls-verify=false)";
	return "";
}

static enum step xfer_neterror(struct xfer *x, CURLcode rc, struct qerr *err)
{
	struct registry *r = x->r;
	autofree char *desc = xfer_desc(x);
	const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);

	if (r->o->tls_verify_off && !r->scheme_settled && x->on_origin && x->redirects == 0 &&
	    strcmp(r->scheme, "https") == 0) {
		log_info("%s: %s; trying plain HTTP (--tls-verify=false)", desc, why);
		r->scheme = "http";
		x->not_before = 0;
		return STEP_AGAIN;
	}
	if (!neterror_retryable(rc) || ++x->tries >= HTTP_TRIES) {
		if (x->tries > 1)
			qerr_set(err, "%s: %s%s (after %d tries)", desc, why, neterror_hint(rc), x->tries);
		else
			qerr_set(err, "%s: %s%s", desc, why, neterror_hint(rc));
		return STEP_FAIL;
	}
	x->not_before = now_mono() + backoff_delay(x);
	log_info("%s: %s; retrying", desc, why);
	return STEP_AGAIN;
}

static double backoff_delay(const struct xfer *x)
{
	double d = BACKOFF_FIRST;
	long ra = -1;

	for (int i = 1; i < x->tries && d < BACKOFF_MAX; i++)
		d *= 2;
	d = d > BACKOFF_MAX ? BACKOFF_MAX : d;
	if (x->retry_after) {
		char *end;
		long s = strtol(x->retry_after, &end, 10);

		if (end != x->retry_after && *end == '\0' && s >= 0)
			ra = s;
		else if (curl_getdate(x->retry_after, NULL) > 0)
			ra = (long)(curl_getdate(x->retry_after, NULL) - time(NULL));
	}
	if (ra > d)
		d = ra > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (double)ra;
	return d;
}

static enum step xfer_backoff(struct xfer *x, struct qerr *err)
{
	autofree char *desc = NULL;

	if (++x->tries >= HTTP_TRIES)
		return xfer_fail_status(x, err);
	x->not_before = now_mono() + backoff_delay(x);
	desc = xfer_desc(x);
	log_info("%s: %ld %s; retrying in %.1fs", desc, x->status, status_text(x->status), x->not_before - now_mono());
	return STEP_AGAIN;
}

static enum step xfer_redirect(struct xfer *x, struct qerr *err)
{
	autofree char *desc = xfer_desc(x);
	autofree char *scheme = NULL, *host = NULL;
	char *next;
	long port;

	if (x->kind == XF_TOKEN)
		return qerr_set(err, "%s: %ld redirect (not followed for a token request)", desc, x->status), STEP_FAIL;
	if (!x->location)
		return qerr_set(err, "%s: %ld redirect without Location", desc, x->status), STEP_FAIL;
	if (++x->redirects > REDIRECTS_MAX)
		return qerr_set(err, "%s: more than %d redirects", desc, REDIRECTS_MAX), STEP_FAIL;
	next = url_resolve(x->url, x->location);
	if (!next || !url_origin(next, &scheme, &host, &port)) {
		free(next);
		return qerr_set(err, "%s: redirect to an invalid or non-HTTP Location", desc), STEP_FAIL;
	}
	if (strcmp(scheme, "http") == 0 && strncmp(x->url, "https:", 6) == 0 && !x->r->o->tls_verify_off) {
		free(next);
		return qerr_set(err, "%s: refusing a redirect from HTTPS to plain HTTP (%s)", desc, host), STEP_FAIL;
	}
	if (x->on_origin && !is_origin(x->r, next)) {
		log_debug("redirect to %s:%ld leaves the registry: credentials are not sent there", host, port);
		x->on_origin = false;
	}
	free(x->url);
	x->url = next;
	x->not_before = 0;
	return STEP_AGAIN;
}

static enum step xfer_rejected(struct xfer *x, struct qerr *err)
{
	struct registry *r = x->r;
	autofree char *desc = xfer_desc(x);
	autofree char *detail = registry_error_message(x->errbody.p, x->errbody.len);
	const char *sep = detail ? "; registry says: " : "";

	if (!detail)
		detail = xstrdup("");
	if (r->creds_sent)
		qerr_set(err, "%s: 401 Unauthorized (credentials for %s rejected)", desc, r->domain);
	else if (r->creds_state == -1)
		qerr_set(err, "%s: 401 Unauthorized (authentication required; no credentials for %s found%s%s)", desc,
		         r->domain, sep, detail);
	else
		qerr_set(err, "%s: 401 Unauthorized%s%s%s", desc, *detail ? " (" : "", detail, *detail ? ")" : "");
	return STEP_FAIL;
}

static enum step xfer_unauthorized(struct xfer *x, struct qerr *err)
{
	struct registry *r = x->r;
	autofree char *desc = xfer_desc(x);

	if (x->kind == XF_TOKEN) {
		if (x->basic || x->form)
			qerr_set(err, "%s: 401 Unauthorized (%s for %s rejected)", desc,
			         x->form ? "identity token" : "credentials", r->domain);
		else
			qerr_set(err, "%s: 401 Unauthorized (authentication required; no credentials for %s found)",
			         desc, r->domain);
		return STEP_FAIL;
	}
	if (!x->on_origin)
		return qerr_set(err, "%s: 401 Unauthorized from a redirect target (credentials are only sent to %s)",
		                desc, r->endpoint),
		       STEP_FAIL;
	if (x->auth_gen != r->auth_gen)
		return STEP_AGAIN; /* another request already answered a challenge */
	if (x->auth_refreshed)
		return xfer_rejected(x, err);
	x->auth_refreshed = true;
	if (registry_authenticate(r, x->www_auth, err) < 0) {
		qerr_wrap(err, "%s: ", desc);
		return STEP_FAIL;
	}
	x->not_before = 0;
	return STEP_AGAIN;
}

static enum step xfer_success(struct xfer *x, struct qerr *err)
{
	int rc;

	if (!x->sink)
		return STEP_DONE;
	if (!x->body_seen && range_check(x, err) < 0)
		return STEP_FAIL;
	rc = x->sink->done(x->sink->ctx, err);
	if (rc == 1) {
		x->not_before = 0;
		return STEP_AGAIN;
	}
	return rc == 0 ? STEP_DONE : STEP_FAIL;
}

static enum step xfer_finish(struct xfer *x, CURLcode rc, struct qerr *err)
{
	if (x->cb_failed) {
		autofree char *desc = xfer_desc(x);
		*err = x->cb_err;
		qerr_wrap(err, "%s: ", desc);
		return STEP_FAIL;
	}
	if (rc != CURLE_OK)
		return xfer_neterror(x, rc, err);
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->on_origin)
		x->r->scheme_settled = true;
	if (x->status >= 200 && x->status < 300)
		return xfer_success(x, err);
	if (x->status == 301 || x->status == 302 || x->status == 303 || x->status == 307 || x->status == 308)
		return xfer_redirect(x, err);
	if (x->status == 401)
		return xfer_unauthorized(x, err);
	if (x->status == 416 && x->sink && x->range_from > 0) {
		log_debug("416 for a Range GET: downloading from the start");
		return x->sink->restart(x->sink->ctx, err) < 0 ? STEP_FAIL : STEP_AGAIN;
	}
	if (x->status == 429 || x->status == 408 || x->status >= 500)
		return xfer_backoff(x, err);
	return xfer_fail_status(x, err);
}

static void sleep_until(double t)
{
	double d = t - now_mono();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Run x to its end on its own (blocking). */
int xfer_run_easy(struct xfer *x, struct qerr *err)
{
	for (;;) {
		enum step s;

		if (xfer_begin(x, err) < 0)
			return -1;
		s = xfer_finish(x, curl_easy_perform(x->h), err);
		xfer_end(x);
		if (s != STEP_AGAIN)
			return s == STEP_DONE ? 0 : -1;
		sleep_until(x->not_before);
	}
}

/* ---- the registry ---- */

static long timeout_from_env(void)
{
	const char *s = getenv("QIMG_HTTP_TIMEOUT");
	char *end;
	long v;

	if (!s || !*s)
		return HTTP_TIMEOUT_DEFAULT;
	v = strtol(s, &end, 10);
	if (*end || v <= 0 || v > HTTP_TIMEOUT_MAX) {
		log_warn("QIMG_HTTP_TIMEOUT=%s is not a number of seconds in 1..%d; using %d", s, HTTP_TIMEOUT_MAX,
		         HTTP_TIMEOUT_DEFAULT);
		return HTTP_TIMEOUT_DEFAULT;
	}
	return v;
}

static int endpoint_split(struct registry *r, struct qerr *err)
{
	autofree char *url = xasprintf("https://%s/", r->endpoint);
	CURLU *u = curl_url();
	autofree char *port = NULL;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || !(r->host = url_get(u, CURLUPART_HOST, 0))) {
		curl_url_cleanup(u);
		return qerr_set(err, "registry \"%s\" is not a valid host[:port]", r->endpoint);
	}
	port = url_get(u, CURLUPART_PORT, 0);
	r->port = port ? strtol(port, NULL, 10) : 0;
	curl_url_cleanup(u);
	return 0;
}

static int curl_objects_new(struct registry *r, struct qerr *err)
{
	r->share = curl_share_init();
	r->multi = curl_multi_init();
	if (!r->share || !r->multi)
		return qerr_set(err, "curl init failed");
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	return 0;
}

struct registry *registry_new(const struct image_ref *ref, const struct pull_opts *o, struct qerr *err)
{
	struct registry *r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		qerr_set(err, "curl_global_init failed");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->o = o;
	r->domain = xstrdup(ref->domain);
	r->repo = xstrdup(ref->path);
	r->endpoint = xstrdup(ref_endpoint(ref));
	r->scheme = "https";
	r->timeout = timeout_from_env();
	if (endpoint_split(r, err) < 0 || curl_objects_new(r, err) < 0) {
		registry_free(r);
		return NULL;
	}
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	if (r->multi)
		curl_multi_cleanup(r->multi);
	if (r->share)
		curl_share_cleanup(r->share);
	if (r->authz)
		explicit_bzero(r->authz, strlen(r->authz));
	free(r->authz);
	credentials_free(&r->creds);
	tls_free(r);
	free(r->domain);
	free(r->repo);
	free(r->endpoint);
	free(r->host);
	free(r);
	curl_global_cleanup();
}

void http_resp_free(struct http_resp *resp)
{
	buf_free(&resp->body);
	free(resp->content_type);
	free(resp->docker_digest);
	memset(resp, 0, sizeof(*resp));
}

int registry_get_manifest(struct registry *r, const char *reference, struct http_resp *resp, struct qerr *err)
{
	struct xfer x;
	int rc;

	memset(resp, 0, sizeof(*resp));
	xfer_init(&x, r, XF_REGISTRY, xasprintf("/v2/%s/manifests/%s", r->repo, reference));
	x.accept = ACCEPT_MANIFESTS;
	x.max = MANIFEST_MAX;
	rc = xfer_run_easy(&x, err);
	if (rc == 0) {
		resp->body = x.mem;
		memset(&x.mem, 0, sizeof(x.mem));
		resp->content_type = x.ctype;
		resp->docker_digest = x.dcd;
		x.ctype = x.dcd = NULL;
	}
	xfer_free(&x);
	return rc;
}

int registry_check_login(struct registry *r, const struct credentials *c, struct qerr *err)
{
	struct xfer x;
	int rc;

	credentials_free(&r->creds);
	r->creds.user = xstrdup(c->user);
	r->creds.pass = xstrdup(c->pass);
	r->creds_state = 1;
	xfer_init(&x, r, XF_REGISTRY, xstrdup("/v2/"));
	x.max = ERRBODY_MAX;
	rc = xfer_run_easy(&x, err);
	xfer_free(&x);
	return rc;
}

/* ---- blobs in parallel ---- */

static int multi_launch(struct registry *r, struct xfer *x, struct qerr *err)
{
	if (xfer_begin(x, err) < 0)
		return -1;
	if (curl_multi_add_handle(r->multi, x->h) != CURLM_OK)
		return qerr_set(err, "curl_multi_add_handle failed");
	return 0;
}

/* Handle finished attempts: 1 per xfer done, via *done; -1 on a failure. */
static int multi_collect(struct registry *r, size_t *done, struct qerr *err)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(r->multi, &left))) {
		CURL *h = msg->easy_handle;
		CURLcode res = msg->data.result;
		struct xfer *x = NULL;
		enum step s;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(r->multi, h);
		s = xfer_finish(x, res, err);
		xfer_end(x);
		if (s == STEP_FAIL)
			return -1;
		if (s == STEP_DONE)
			(*done)++;
		else
			x->waiting = true;
	}
	return 0;
}

/* Start waiting retries whose time has come; *next gets the earliest time still ahead (or 0). */
static int multi_relaunch(struct registry *r, struct xfer *xs, size_t n, double *next, struct qerr *err)
{
	double now = now_mono();

	*next = 0;
	for (size_t i = 0; i < n; i++) {
		if (!xs[i].waiting)
			continue;
		if (xs[i].not_before <= now) {
			if (multi_launch(r, &xs[i], err) < 0)
				return -1;
		} else if (*next == 0 || xs[i].not_before < *next) {
			*next = xs[i].not_before;
		}
	}
	return 0;
}

static int multi_loop(struct registry *r, struct xfer *xs, size_t n, int parallel, void (*tick)(void *), void *tick_ctx,
                      struct qerr *err)
{
	size_t started = 0, done = 0;

	while (done < n) {
		int running, timeout_ms = 100;
		double next;

		for (; started < n && started - done < (size_t)parallel; started++)
			if (multi_launch(r, &xs[started], err) < 0)
				return -1;
		if (multi_relaunch(r, xs, started, &next, err) < 0)
			return -1;
		if (curl_multi_perform(r->multi, &running) != CURLM_OK)
			return qerr_set(err, "curl_multi_perform failed");
		if (multi_collect(r, &done, err) < 0)
			return -1;
		if (next > 0 && (next - now_mono()) * 1000 < timeout_ms)
			timeout_ms = next > now_mono() ? (int)((next - now_mono()) * 1000) + 1 : 0;
		if (done < n && curl_multi_poll(r->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
			return qerr_set(err, "curl_multi_poll failed");
		if (tick)
			tick(tick_ctx);
	}
	return 0;
}

int registry_get_blobs(struct registry *r, struct blob_fetch *f, size_t n, int parallel, void (*tick)(void *),
                       void *tick_ctx, struct qerr *err)
{
	struct xfer *xs = xcalloc(n ? n : 1, sizeof(*xs));
	int rc;

	parallel = parallel <= 0 ? 1 : parallel > PARALLEL_MAX ? PARALLEL_MAX : parallel;
	curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)parallel);
	for (size_t i = 0; i < n; i++) {
		xfer_init(&xs[i], r, XF_REGISTRY, xasprintf("/v2/%s/blobs/%s", r->repo, f[i].digest));
		xs[i].sink = &f[i].sink;
	}
	rc = multi_loop(r, xs, n, parallel, tick, tick_ctx, err);
	for (size_t i = 0; i < n; i++) {
		if (xs[i].h)
			curl_multi_remove_handle(r->multi, xs[i].h);
		xfer_free(&xs[i]);
	}
	free(xs);
	return rc;
}
