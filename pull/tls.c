/* The registry client's TLS: the system CA bundle, containers' certs.d directories per host (extra CAs, client
   certificates), applied to each transfer's handle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "registry_int.h"

#define CA_FILE_MAX        (16 << 20)
#define CA_BUNDLE_FALLBACK "/etc/ssl/certs/ca-certificates.crt"

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

int tls_apply(struct xfer *x, struct qerr *err)
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

void tls_free(struct registry *r)
{
	for (size_t i = 0; i < r->ntls; i++) {
		free(r->tls[i].hostport);
		free(r->tls[i].ca);
		free(r->tls[i].cert);
		free(r->tls[i].key);
	}
	free(r->tls);
	free(r->sys_ca);
}
