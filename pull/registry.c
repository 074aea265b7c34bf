/* The registry v2 HTTP client on libcurl: auth challenges and tokens, TLS per host, retries, own redirect
   handling (credentials never leave the registry's origin), blobs in parallel with curl multi. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

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
#define CA_FILE_MAX          (16 << 20)
#define CA_BUNDLE_FALLBACK   "/etc/ssl/certs/ca-certificates.crt"
#define USER_AGENT           "qimg/0.1"
#define PARALLEL_MAX         32

#define ACCEPT_MANIFESTS MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

struct tls_host {
	char *hostport;
	char *ca; /* system bundle + certs.d CAs; NULL when no extra CA applies */
	size_t ca_len;
	char *cert, *key; /* client certificate from the host's certs.d dir */
};

struct registry {
	const struct pull_opts *o;
	char *domain, *repo, *endpoint;
	char *host;          /* endpoint host, for origin checks */
	long port;           /* endpoint port, 0 when none was given */
	const char *scheme;  /* "https", or "http" after the --tls-verify=false fallback */
	bool scheme_settled; /* the origin answered on scheme */
	char *authz;         /* "Authorization: ..." sent to the origin; NULL before any challenge */
	unsigned auth_gen;   /* bumped whenever authz changes */
	bool creds_sent;     /* authz came from stored credentials */
	int creds_state;     /* 0 not looked up, 1 found, -1 none */
	struct credentials creds;
	CURLSH *share; /* connections, TLS sessions and DNS shared by every request of the pull */
	CURLM *multi;
	struct tls_host *tls;
	size_t ntls;
	char *sys_ca;
	size_t sys_ca_len;
	bool sys_ca_loaded;
	long timeout;
};

enum xfer_kind { XF_REGISTRY, XF_TOKEN };
enum step { STEP_DONE, STEP_AGAIN, STEP_FAIL };

/* One logical GET across its attempts, redirects and auth rounds. */
struct xfer {
	struct registry *r;
	enum xfer_kind kind;
	CURL *h;
	struct curl_slist *hdrs;
	char *path; /* "/v2/..." on the origin */
	char *url;  /* current absolute URL */
	const char *accept;
	char *basic;    /* XF_TOKEN: "Authorization: Basic ..." or NULL */
	char *form;     /* XF_TOKEN: an OAuth2 form to POST (identity token), or NULL for a GET */
	bool on_origin; /* still the registry itself: only then is authz sent (sticky once false) */
	int tries, redirects;
	unsigned auth_gen;
	bool auth_refreshed;
	double not_before;
	bool waiting;
	int64_t range_from;
	/* the current response */
	long status;
	bool body_seen, body_ok;
	char *location, *www_auth, *ctype, *dcd, *retry_after, *crange;
	struct buf mem; /* body when there is no sink */
	size_t max;
	struct blob_sink *sink;
	struct buf errbody;
	bool cb_failed;
	struct qerr cb_err;
	char errbuf[CURL_ERROR_SIZE];
};

static double backoff_delay(const struct xfer *x);
static int registry_authenticate(struct registry *r, const char *hdr, struct qerr *err);

/* ---- URLs and origins ---- */

static char *url_get(CURLU *u, CURLUPart part, unsigned flags)
{
	char *v = NULL, *out;

	if (curl_url_get(u, part, &v, flags) != CURLUE_OK || !v)
		return NULL;
	out = xstrdup(v);
	curl_free(v);
	return out;
}

/* scheme, host and port (default port filled in) of an absolute http(s) URL; false when it is not one. */
static bool url_origin(const char *url, char **scheme, char **host, long *port)
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

static long default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

static bool is_origin(const struct registry *r, const char *url)
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
static char *url_for_message(const char *url)
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

/* ---- TLS: certs.d per host ---- */

static bool host_name_ok(const char *host)
{
	return *host && strcmp(host, ".") != 0 && strcmp(host, "..") != 0 && !strchr(host, '/');
}

/* The first existing certs.d/<host:port> or certs.d/<host> (caller frees), or NULL. */
static char *certs_dir_for(const struct registry *r, const char *host, long port)
{
	const char *home = getenv("HOME");
	autofree char *user_base = home && *home ? xasprintf("%s/.config/containers/certs.d", home) : NULL;
	const char *bases[3] = {"/etc/containers/certs.d", user_base, "/etc/docker/certs.d"};
	size_t nbases = 3;
	struct stat sb;

	if (!host_name_ok(host))
		return NULL;
	if (r->o->certs_dir && *r->o->certs_dir) {
		bases[0] = r->o->certs_dir;
		nbases = 1;
	}
	for (size_t i = 0; i < nbases; i++) {
		if (!bases[i])
			continue;
		for (int with_port = 1; with_port >= 0; with_port--) {
			char *d = with_port ? xasprintf("%s/%s:%ld", bases[i], host, port)
			                    : xasprintf("%s/%s", bases[i], host);

			if (stat(d, &sb) == 0 && S_ISDIR(sb.st_mode))
				return d;
			free(d);
		}
	}
	return NULL;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && strcmp(s + n - m, suf) == 0;
}

static int ca_file_append(const char *dir, const char *name, struct buf *ca, struct qerr *err)
{
	autofree char *path = xasprintf("%s/%s", dir, name);
	size_t len = 0;
	autofree char *data = read_file_at(AT_FDCWD, path, CA_FILE_MAX, &len, err);

	if (!data)
		return qerr_wrap(err, "CA certificate: ");
	buf_append(ca, "\n", 1);
	buf_append(ca, data, len);
	buf_append(ca, "\n", 1);
	return 0;
}

static int client_cert_set(const char *dir, const char *name, struct tls_host *t, struct qerr *err)
{
	autofree char *base = xstrndup(name, strlen(name) - strlen(".cert"));
	char *key = xasprintf("%s/%s.key", dir, base);

	if (access(key, R_OK) < 0) {
		qerr_sys(err, "client certificate %s/%s: key %s", dir, name, key);
		free(key);
		return -1;
	}
	free(t->cert);
	free(t->key);
	t->cert = xasprintf("%s/%s", dir, name);
	t->key = key;
	return 0;
}

/* *.crt of dir into ca; *.cert + *.key into t when want_client. */
static int certs_dir_load(const char *dir, bool want_client, struct buf *ca, struct tls_host *t, struct qerr *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return qerr_sys(err, "open certificate dir %s", dir);
	while (rc == 0 && (e = readdir(d))) {
		if (has_suffix(e->d_name, ".crt"))
			rc = ca_file_append(dir, e->d_name, ca, err);
		else if (want_client && has_suffix(e->d_name, ".cert"))
			rc = client_cert_set(dir, e->d_name, t, err);
	}
	closedir(d);
	return rc;
}

/* A directory of OpenSSL hash links ("1a2b3c4d.0"), which OpenSSL searches by issuer name on demand. */
static bool is_hash_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d)))
		found = strlen(e->d_name) == 10 && strspn(e->d_name, "0123456789abcdef") == 8 && e->d_name[8] == '.';
	if (d)
		closedir(d);
	return found;
}

/* The system CAs to add to a certs.d CA. Nothing when libcurl's CA path is a hash dir: libcurl keeps using it
   beside CURLOPT_CAINFO_BLOB, and OpenSSL then reads only the issuer it needs instead of parsing the whole
   bundle on every new connection (~40 ms of CPU each here). */
static void sys_ca_load(struct registry *r)
{
	CURL *h = curl_easy_init();
	char *path = NULL;
	struct qerr e;

	r->sys_ca_loaded = true;
	if (h && curl_easy_getinfo(h, CURLINFO_CAPATH, &path) == CURLE_OK && path && is_hash_dir(path)) {
		log_debug("system CAs: looked up in %s", path);
		curl_easy_cleanup(h);
		return;
	}
	if (h && curl_easy_getinfo(h, CURLINFO_CAINFO, &path) == CURLE_OK && path)
		r->sys_ca = read_file_at(AT_FDCWD, path, CA_FILE_MAX, &r->sys_ca_len, &e);
	if (!r->sys_ca)
		r->sys_ca = read_file_at(AT_FDCWD, CA_BUNDLE_FALLBACK, CA_FILE_MAX, &r->sys_ca_len, &e);
	if (!r->sys_ca)
		log_debug("no system CA bundle found; only certs.d CAs are trusted");
	curl_easy_cleanup(h);
}

/* CAs for host: its own certs.d dir plus the registry's (the registry's CA also vouches for its realm). */
static int tls_host_build(struct registry *r, const char *host, long port, struct tls_host *t, struct qerr *err)
{
	long rport = r->port ? r->port : default_port(r->scheme);
	autofree char *own = certs_dir_for(r, host, port), *reg = certs_dir_for(r, r->host, rport);
	struct buf ca = {0};

	if (own && certs_dir_load(own, true, &ca, t, err) < 0)
		goto fail;
	if (reg && (!own || strcmp(own, reg) != 0) && certs_dir_load(reg, false, &ca, t, err) < 0)
		goto fail;
	if (own || reg) {
		bool two = own && reg && strcmp(own, reg) != 0;
		log_debug("TLS for %s:%ld: certificates from %s%s%s", host, port, own ? own : reg, two ? " and " : "",
		          two ? reg : "");
	}
	if (ca.len) {
		if (!r->sys_ca_loaded)
			sys_ca_load(r);
		t->ca = xmalloc(r->sys_ca_len + ca.len);
		if (r->sys_ca_len)
			memcpy(t->ca, r->sys_ca, r->sys_ca_len);
		memcpy(t->ca + r->sys_ca_len, ca.p, ca.len);
		t->ca_len = r->sys_ca_len + ca.len;
	}
	buf_free(&ca);
	return 0;
fail:
	buf_free(&ca);
	return -1;
}

static struct tls_host *tls_host_get(struct registry *r, const char *host, long port, struct qerr *err)
{
	autofree char *key = xasprintf("%s:%ld", host, port);
	struct tls_host *t;

	for (size_t i = 0; i < r->ntls; i++)
		if (strcasecmp(r->tls[i].hostport, key) == 0)
			return &r->tls[i];
	r->tls = xrealloc(r->tls, (r->ntls + 1) * sizeof(*r->tls));
	t = &r->tls[r->ntls];
	memset(t, 0, sizeof(*t));
	if (tls_host_build(r, host, port, t, err) < 0) {
		free(t->ca);
		free(t->cert);
		free(t->key);
		return NULL;
	}
	t->hostport = xstrdup(key);
	r->ntls++;
	return t;
}

static int tls_apply(struct xfer *x, struct qerr *err)
{
	autofree char *scheme = NULL, *host = NULL;
	struct tls_host *t;
	long port;

	if (!url_origin(x->url, &scheme, &host, &port))
		return qerr_set(err, "%s: not an http(s) URL", x->url);
	if (strcmp(scheme, "https") != 0)
		return 0;
	t = tls_host_get(x->r, host, port, err);
	if (!t)
		return -1;
	if (x->r->o->tls_verify_off) {
		curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(x->h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (t->ca) {
		struct curl_blob blob = {.data = t->ca, .len = t->ca_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(x->h, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (t->cert) {
		curl_easy_setopt(x->h, CURLOPT_SSLCERT, t->cert);
		curl_easy_setopt(x->h, CURLOPT_SSLKEY, t->key);
	}
	return 0;
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

static void xfer_init(struct xfer *x, struct registry *r, enum xfer_kind kind, char *url_or_path)
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

static void xfer_free(struct xfer *x)
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
static int xfer_run_easy(struct xfer *x, struct qerr *err)
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

/* ---- auth ---- */

static int creds_load(struct registry *r, struct qerr *err)
{
	int rc;

	if (r->creds_state != 0)
		return 0;
	rc = creds_find(r->o->auth_file, r->domain, r->repo, &r->creds, err);
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

static int registry_authenticate(struct registry *r, const char *hdr, struct qerr *err)
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
	for (size_t i = 0; i < r->ntls; i++) {
		free(r->tls[i].hostport);
		free(r->tls[i].ca);
		free(r->tls[i].cert);
		free(r->tls[i].key);
	}
	free(r->tls);
	free(r->sys_ca);
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
