/* Private to the registry client (pull/registry.c: transfers and the registry; pull/tls.c: certs.d per host;
   pull/regauth.c: the auth flow): its state and the few functions the three files share. */
#ifndef QIMG_REGISTRY_INT_H
#define QIMG_REGISTRY_INT_H

#include <curl/curl.h>
#include "internal.h"

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

/* registry.c: URLs and transfers */
char *url_get(CURLU *u, CURLUPart part, unsigned flags);
bool url_origin(const char *url, char **scheme, char **host, long *port);
long default_port(const char *scheme);
bool is_origin(const struct registry *r, const char *url);
/* The URL without its query (presigned redirect URLs carry signatures that do not belong in messages). */
char *url_for_message(const char *url);
void xfer_init(struct xfer *x, struct registry *r, enum xfer_kind kind, char *url_or_path);
void xfer_free(struct xfer *x);
int xfer_run_easy(struct xfer *x, struct qerr *err);

/* tls.c: CA bundle, certs.d CAs and client certificate for x's host, set on its handle */
int tls_apply(struct xfer *x, struct qerr *err);
void tls_free(struct registry *r);

/* regauth.c: answer a 401's WWW-Authenticate (hdr) by setting r->authz (Basic or a Bearer token) */
int registry_authenticate(struct registry *r, const char *hdr, struct qerr *err);

#endif
