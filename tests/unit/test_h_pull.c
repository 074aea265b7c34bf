/* Unit tests: the pull parsers (WWW-Authenticate, manifests, indexes, configs, platforms, auth files, tokens). */
#include "../../pull/internal.h"
#include "../../store/digest.h"
#include "t.h"

#define H1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H3 "2123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D1 "sha256:" H1
#define D2 "sha256:" H2
#define D3 "sha256:" H3

/* ---- WWW-Authenticate ---- */

static void wa_good(const char *name, const char *hdr, enum auth_scheme scheme, const char *realm, const char *service,
                    const char *scope)
{
	struct auth_challenge c;
	struct qerr err = {0};
	char n[200];

	if (wwwauth_parse(hdr, &c, &err) < 0) {
		printf("FAIL wwwauth %s: %s\n", name, err.msg);
		t_failures++;
		return;
	}
	snprintf(n, sizeof(n), "wwwauth %s: scheme", name);
	T_OK(n, c.scheme == scheme);
	snprintf(n, sizeof(n), "wwwauth %s: realm", name);
	T_STREQ(n, realm, c.realm);
	snprintf(n, sizeof(n), "wwwauth %s: service", name);
	T_STREQ(n, service, c.service);
	snprintf(n, sizeof(n), "wwwauth %s: scope", name);
	T_STREQ(n, scope, c.scope);
	auth_challenge_free(&c);
}

static void wa_bad(const char *name, const char *hdr, const char *want)
{
	struct auth_challenge c;
	struct qerr err = {0};
	char n[200];
	int rc = wwwauth_parse(hdr, &c, &err);

	snprintf(n, sizeof(n), "wwwauth rejects %s", name);
	if (rc == 0)
		auth_challenge_free(&c);
	T_OK(n, rc < 0 && strstr(err.msg, want));
}

static void test_wwwauth(void)
{
	char big[20000];

	wa_good("docker hub",
	        "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	        "scope=\"repository:library/busybox:pull\"",
	        AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io", "repository:library/busybox:pull");
	wa_good("basic", "Basic realm=\"qimg-test\"", AUTH_BASIC, "qimg-test", NULL, NULL);
	wa_good("bare basic", "Basic", AUTH_BASIC, NULL, NULL, NULL);
	wa_good("escapes", "Bearer realm=\"https://a/t?x=\\\"q\\\"\", service=\"s\\\\v\"", AUTH_BEARER,
	        "https://a/t?x=\"q\"", "s\\v", NULL);
	wa_good("tokens unquoted, spaces around =", "bearer  REALM = https://r/t ,Service=svc", AUTH_BEARER,
	        "https://r/t", "svc", NULL);
	wa_good("comma inside quotes", "Bearer realm=\"https://r/t\",scope=\"repository:a/b:pull,push\"", AUTH_BEARER,
	        "https://r/t", NULL, "repository:a/b:pull,push");
	wa_good("bearer preferred over basic", "Basic realm=\"x\", Bearer realm=\"https://r/t\", service=\"s\"",
	        AUTH_BEARER, "https://r/t", "s", NULL);
	wa_good("token68 scheme skipped", "Negotiate abc==, Bearer realm=\"https://r/t\"", AUTH_BEARER, "https://r/t",
	        NULL, NULL);
	wa_good("unknown params ignored", "Bearer realm=\"https://r/t\",error=\"invalid_token\",error_description=x",
	        AUTH_BEARER, "https://r/t", NULL, NULL);
	wa_good("empty service", "Bearer realm=\"https://r/t\",service=\"\"", AUTH_BEARER, "https://r/t", "", NULL);
	wa_good("extra commas", ",, Bearer realm=\"https://r/t\" ,, service=s,", AUTH_BEARER, "https://r/t", "s", NULL);
	wa_good("combined headers", "Basic realm=\"a\", Bearer realm=\"https://r/t\"", AUTH_BEARER, "https://r/t", NULL,
	        NULL);

	wa_bad("unterminated quote", "Bearer realm=\"https://r/t", "unterminated");
	wa_bad("newline inside quotes", "Bearer realm=\"https://r/t\nX-Injected: 1\"", "control character");
	wa_bad("DEL inside quotes", "Bearer realm=\"https://r/\x7ft\"", "control character");
	wa_bad("duplicate realm", "Bearer realm=\"https://good/t\", realm=\"https://evil/t\"", "duplicate");
	wa_bad("bearer without realm", "Bearer service=\"x\"", "without a realm");
	wa_bad("bearer with empty realm", "Bearer realm=\"\"", "without a realm");
	wa_bad("unknown scheme only", "Digest realm=\"x\", nonce=\"y\"", "no supported");
	wa_bad("empty", "", "no supported");
	wa_bad("starts with =", "=Bearer", "expected an auth scheme");
	wa_bad("scheme glued to =", "Bearer=realm", "expected an auth scheme");
	wa_bad("garbage after value", "Bearer realm=\"https://r/t\" junk", "expected a comma");
	wa_bad("missing value", "Bearer realm=, service=x", "");
	wa_good("unquoted URL with query", "Bearer realm=https://r/t?a=b,scope=x", AUTH_BEARER, "https://r/t?a=b", NULL,
	        "x");
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "Bearer realm=\"", 14);
	big[sizeof(big) - 1] = '\0';
	wa_bad("oversized", big, "longer than");
	wa_bad("NULL", NULL, "no supported");
}

/* ---- manifests and indexes ---- */

#define CFG_DESC "{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":123}"
#define LAYER(d, sz)                                                                                                   \
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" d "\",\"size\":" sz "}"

static int parse(const char *json, const char *ctype, enum manifest_kind *kind, struct manifest *m, struct index *ix,
                 struct qerr *err)
{
	return manifest_parse(json, strlen(json), ctype, kind, m, ix, err);
}

static void m_bad(const char *name, const char *json, const char *ctype, const char *want)
{
	struct manifest m;
	struct index ix;
	enum manifest_kind k;
	struct qerr err = {0};
	char n[200];
	int rc = parse(json, ctype, &k, &m, &ix, &err);

	snprintf(n, sizeof(n), "manifest rejects %s", name);
	if (rc == 0) {
		manifest_free(&m);
		index_free(&ix);
	}
	if (rc < 0 && strstr(err.msg, want))
		printf("ok %s\n", n);
	else {
		printf("FAIL %s: rc %d, message \"%s\" lacks \"%s\"\n", n, rc, err.msg, want);
		t_failures++;
	}
}

static void test_manifest_good(void)
{
	struct manifest m;
	struct index ix;
	enum manifest_kind k;
	struct qerr err = {0};
	const char *oci = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":" CFG_DESC
	                  ",\"layers\":[" LAYER(D2, "10") "," LAYER(D3, "20") "]}";
	const char *docker =
	    "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST
	    "\",\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG "\",\"digest\":\"" D1
	    "\",\"size\":5},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
	    "\"digest\":\"" D2 "\",\"size\":7}]}";

	T_OK("manifest OCI parses", parse(oci, NULL, &k, &m, &ix, &err) == 0 && k == MANIFEST_IMAGE);
	T_OK("manifest OCI layers", m.nlayers == 2 && !strcmp(m.layers[1].digest, D3) && m.layers[1].size == 20);
	T_STREQ("manifest OCI config", D1, m.config.digest);
	manifest_free(&m);
	T_OK("manifest docker schema2 parses", parse(docker, MT_DOCKER_MANIFEST, &k, &m, &ix, &err) == 0);
	T_STREQ("manifest docker media type", MT_DOCKER_MANIFEST, m.media_type);
	manifest_free(&m);
	/* no mediaType field: the shape decides, the Content-Type names the flavour */
	T_OK("manifest without mediaType",
	     parse("{\"schemaVersion\":2,\"config\":" CFG_DESC ",\"layers\":[" LAYER(D2, "1") "]}", MT_DOCKER_MANIFEST,
	           &k, &m, &ix, &err) == 0 &&
	         !strcmp(m.media_type, MT_DOCKER_MANIFEST));
	manifest_free(&m);
	T_OK("index parses", parse("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX
	                           "\",\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D2
	                           "\",\"size\":9,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
	                           "\"variant\":\"v7\"}}]}",
	                           NULL, &k, &m, &ix, &err) == 0 &&
	                         k == MANIFEST_INDEX && ix.n == 1 && ix.manifests[0].has_platform &&
	                         !strcmp(ix.manifests[0].platform.variant, "v7"));
	index_free(&ix);
}

static void test_manifest_bad(void)
{
	m_bad("schema1 by content type", "{}", MT_DOCKER_SCHEMA1_SIGNED, "schema 1");
	m_bad("schema1 by version", "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", "application/json",
	      "schema 1");
	m_bad("schema1 by media type", "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_SCHEMA1 "\"}", NULL,
	      "schema 1");
	m_bad("bad JSON", "{\"schemaVersion\":2,", NULL, "invalid JSON");
	m_bad("not an object", "[1,2]", NULL, "not an object");
	m_bad("empty", "", NULL, "invalid JSON");
	m_bad("duplicate keys", "{\"schemaVersion\":2,\"schemaVersion\":2}", NULL, "invalid JSON");
	m_bad("deep nesting",
	      "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]"
	      "]]]]"
	      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	      NULL, "nested deeper");
	m_bad("schemaVersion missing", "{\"config\":" CFG_DESC ",\"layers\":[]}", NULL, "schemaVersion");
	m_bad("traversal digest",
	      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG
	      "\",\"digest\":\"sha256:../../../etc/passwd\","
	      "\"size\":1},\"layers\":[]}",
	      NULL, "invalid digest");
	m_bad("uppercase digest",
	      "{\"schemaVersion\":2,\"config\":" CFG_DESC
	      ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
	      "\"digest\":\"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1}]}",
	      NULL, "invalid digest");
	m_bad("sha512 digest",
	      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"sha512:" H1 H1 "\","
	      "\"size\":1},\"layers\":[]}",
	      NULL, "invalid digest");
	m_bad("negative size",
	      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1
	      "\",\"size\":-1},\"layers\":[]}",
	      NULL, "size");
	m_bad("string size",
	      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1
	      "\",\"size\":\"1\"},\"layers\":[]}",
	      NULL, "size");
	m_bad("no layers", "{\"schemaVersion\":2,\"config\":" CFG_DESC ",\"layers\":[]}", NULL, "no layers");
	m_bad("layers not an array", "{\"schemaVersion\":2,\"config\":" CFG_DESC ",\"layers\":{}}", NULL,
	      "not an array");
	m_bad("media type mismatch",
	      "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"config\":" CFG_DESC
	      ",\"layers\":[" LAYER(D2, "1") "]}",
	      NULL, "does not match");
	m_bad("unknown media type", "{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", NULL,
	      "unsupported media type");
	m_bad("helm chart (not an image)",
	      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
	      "vnd.cncf.helm.config.v1+json\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[" LAYER(D2, "1") "]}",
	      NULL, "not a container image");
	m_bad("encrypted layer",
	      "{\"schemaVersion\":2,\"config\":" CFG_DESC
	      ",\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip+encrypted\","
	      "\"digest\":\"" D2 "\",\"size\":1}]}",
	      NULL, "unsupported media type");
	m_bad("index entry without digest",
	      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":1}]}", NULL,
	      "missing \"digest\"");
	m_bad("platform without os",
	      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D1
	      "\",\"size\":1,"
	      "\"platform\":{\"architecture\":\"amd64\"}}]}",
	      NULL, "missing \"os\"");
	m_bad("NUL in string", "{\"schemaVersion\":2,\"mediaType\":\"a\\u0000b\"}", NULL, "invalid JSON");
}

/* ---- image configs ---- */

static void test_config(void)
{
	struct image_config c;
	struct qerr err = {0};
	const char *full =
	    "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"created\":\"2024-01-01T00:00:00Z\","
	    "\"config\":{\"Env\":[\"PATH=/bin\",\"A=b c\"],\"Entrypoint\":null,\"Cmd\":[\"/bin/sh\",\"-c\",\"echo "
	    "hi\"],"
	    "\"WorkingDir\":\"/w\",\"User\":\"1000:1000\",\"StopSignal\":\"SIGINT\"},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},\"history\":[]}";
	const char *bad_entry =
	    "{\"config\":{\"Entrypoint\":\"/bin/sh\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	const char *ep = "{\"config\":{\"Entrypoint\":[]},\"rootfs\":{\"diff_ids\":[]}}";
	const char *bad_diff = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:abc\"]}}";

	T_OK("config parses", image_config_parse(full, strlen(full), &c, &err) == 0);
	T_OK("config env", c.env.n == 2 && !strcmp(c.env.v[1], "A=b c"));
	T_OK("config null entrypoint", !c.has_entrypoint && c.entrypoint.n == 0);
	T_OK("config cmd", c.has_cmd && c.cmd.n == 3 && !strcmp(c.cmd.v[2], "echo hi"));
	T_STREQ("config workdir", "/w", c.workdir);
	T_STREQ("config user", "1000:1000", c.user);
	T_STREQ("config stop signal", "SIGINT", c.stop_signal);
	T_STREQ("config created", "2024-01-01T00:00:00Z", c.created);
	T_OK("config diff_ids", c.diff_ids.n == 2 && !strcmp(c.diff_ids.v[1], D2));
	T_OK("config platform normalised (arm64 v8 -> no variant)",
	     !strcmp(c.platform.arch, "arm64") && !strcmp(c.platform.variant, ""));
	image_config_free(&c);
	T_OK("config entrypoint string rejected",
	     image_config_parse(bad_entry, strlen(bad_entry), &c, &err) < 0 && strstr(err.msg, "not an array"));
	T_OK("config bad diff_id rejected",
	     image_config_parse(bad_diff, strlen(bad_diff), &c, &err) < 0 && strstr(err.msg, "invalid digest"));
	T_OK("config without rootfs rejected", image_config_parse("{}", 2, &c, &err) < 0 && strstr(err.msg, "rootfs"));
	T_OK("config bad JSON rejected", image_config_parse("{\"a\":}", 6, &c, &err) < 0);
	T_OK("config empty entrypoint array is set",
	     image_config_parse(ep, strlen(ep), &c, &err) == 0 && c.has_entrypoint && c.entrypoint.n == 0);
	image_config_free(&c);
}

/* ---- platforms ---- */

static void plat_good(const char *in, const char *want)
{
	struct platform p;
	struct qerr err = {0};
	char n[200];

	snprintf(n, sizeof(n), "platform parse %s", in);
	if (platform_parse(in, &p, &err) < 0) {
		printf("FAIL %s: %s\n", n, err.msg);
		t_failures++;
		return;
	}
	char *s = platform_string(&p);
	T_STREQ(n, want, s);
	free(s);
	platform_free(&p);
}

static void test_platform(void)
{
	const char *bad[] = {"linux",   "linux/", "/amd64",       "linux//amd64",
	                     "a/b/c/d", "",       "linux/am d64", "linux/amd64/"};
	struct platform host, want;
	struct qerr err = {0};
	struct index ix = {0};
	enum manifest_kind k;
	struct manifest m;
	const char *json =
	    "{\"schemaVersion\":2,\"manifests\":["
	    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D1
	    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D2
	    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
	    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D3
	    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
	    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D3
	    "\",\"size\":1,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";
	const struct descriptor *d;

	plat_good("linux/amd64", "linux/amd64");
	plat_good("linux/x86_64", "linux/amd64");
	plat_good("linux/aarch64", "linux/arm64");
	plat_good("linux/arm64/v8", "linux/arm64");
	plat_good("linux/arm", "linux/arm/v7");
	plat_good("linux/arm/v6", "linux/arm/v6");
	plat_good("Linux/ARM64", "linux/arm64");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char n[100];
		snprintf(n, sizeof(n), "platform rejects \"%s\"", bad[i]);
		T_OK(n, platform_parse(bad[i], &want, &err) < 0);
	}
	platform_host(&host);
	T_OK("host platform is linux/<arch>", !strcmp(host.os, "linux") && *host.arch);
	platform_free(&host);

	T_OK("index for selection parses", parse(json, NULL, &k, &m, &ix, &err) == 0 && ix.n == 4);
	platform_parse("linux/arm64", &want, &err);
	d = index_select(&ix, &want, &err);
	T_OK("select linux/arm64 (entry says v8)", d && !strcmp(d->digest, D2));
	platform_free(&want);
	platform_parse("linux/arm/v7", &want, &err);
	d = index_select(&ix, &want, &err);
	T_OK("select linux/arm/v7", d && !strcmp(d->digest, D3));
	platform_free(&want);
	platform_parse("linux/s390x", &want, &err);
	d = index_select(&ix, &want, &err);
	T_OK("no match -> NULL", d == NULL);
	T_OK("no match lists what the index offers", strstr(err.msg, "linux/s390x") &&
	                                                 strstr(err.msg, "linux/amd64, linux/arm64, linux/arm/v7") &&
	                                                 !strstr(err.msg, "unknown"));
	platform_free(&want);
	platform_parse("unknown/unknown", &want, &err);
	T_OK("attestation entries are never selected", index_select(&ix, &want, &err) == NULL);
	platform_free(&want);
	index_free(&ix);
}

/* ---- credential files and tokens ---- */

static int af(const char *json, const char *domain, const char *path, struct credentials *c, struct qerr *err)
{
	return authfile_parse(json, strlen(json), domain, path, c, err);
}

static void test_authfile(void)
{
	struct credentials c;
	struct qerr err = {0};
	/* dXNlcjpwYTpzcw== is "user:pa:ss"; YWRtaW46c2VjcmV0 is "admin:secret"; bnM6bnNwYXNz is "ns:nspass" */
	const char *file = "{\"auths\":{"
	                   "\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
	                   "\"https://index.docker.io/v1/\":{\"auth\":\"YWRtaW46c2VjcmV0\"},"
	                   "\"quay.io\":{\"username\":\"u2\",\"password\":\"p2\"},"
	                   "\"quay.io/team\":{\"auth\":\"bnM6bnNwYXNz\"},"
	                   "\"helper.io\":{}"
	                   "},\"credsStore\":\"desktop\"}";

	T_OK("authfile host:port", af(file, "127.0.0.1:5000", "x/y", &c, &err) == 1);
	T_OK("authfile password with a colon", c.user && !strcmp(c.user, "user") && !strcmp(c.pass, "pa:ss"));
	credentials_free(&c);
	T_OK("authfile docker.io via https://index.docker.io/v1/",
	     af(file, "docker.io", "library/busybox", &c, &err) == 1 && !strcmp(c.user, "admin"));
	credentials_free(&c);
	T_OK("authfile username/password fields",
	     af(file, "quay.io", "other/repo", &c, &err) == 1 && !strcmp(c.user, "u2") && !strcmp(c.pass, "p2"));
	credentials_free(&c);
	T_OK("authfile namespaced entry wins", af(file, "quay.io", "team/app", &c, &err) == 1 && !strcmp(c.user, "ns"));
	credentials_free(&c);
	T_OK("authfile namespace matches whole components only",
	     af(file, "quay.io", "teamster/app", &c, &err) == 1 && !strcmp(c.user, "u2"));
	credentials_free(&c);
	T_OK("authfile other port is another host", af(file, "127.0.0.1:5001", "x", &c, &err) == 0);
	T_OK("authfile entry of a credential helper is no credential", af(file, "helper.io", "x", &c, &err) == 0);
	T_OK("authfile prefix host does not match", af(file, "127.0.0.1:50", "x", &c, &err) == 0);
	T_OK("authfile without auths", af("{}", "quay.io", "x", &c, &err) == 0);
	T_OK("authfile bad base64 is an error",
	     af("{\"auths\":{\"r.io\":{\"auth\":\"!!!\"}}}", "r.io", "x", &c, &err) < 0 && strstr(err.msg, "base64"));
	T_OK("authfile base64 without colon is an error",
	     af("{\"auths\":{\"r.io\":{\"auth\":\"dXNlcg==\"}}}", "r.io", "x", &c, &err) < 0);
	T_OK("authfile bad JSON is an error", af("{\"auths\":", "r.io", "x", &c, &err) < 0);
	T_OK("authfile unpadded base64", af("{\"auths\":{\"r.io\":{\"auth\":\"YTpi\"}}}", "r.io", "x", &c, &err) == 1 &&
	                                     !strcmp(c.user, "a") && !strcmp(c.pass, "b"));
	credentials_free(&c);
	T_OK("authfile identitytoken wins over auth",
	     af("{\"auths\":{\"r.io\":{\"auth\":\"YTpi\",\"identitytoken\":\"rt\"}}}", "r.io", "x", &c, &err) == 1 &&
	         c.identity_token && !strcmp(c.identity_token, "rt") && !c.user && !c.pass);
	credentials_free(&c);
	T_OK("authfile identitytoken alone",
	     af("{\"auths\":{\"r.io\":{\"identitytoken\":\"rt2\"}}}", "r.io", "x", &c, &err) == 1 &&
	         !strcmp(c.identity_token, "rt2"));
	credentials_free(&c);
	T_OK("authfile empty identitytoken is no credential",
	     af("{\"auths\":{\"r.io\":{\"identitytoken\":\"\"}}}", "r.io", "x", &c, &err) == 0);
	c.user = "user";
	c.pass = "pa:ss";
	char *v = basic_auth_value(&c);
	T_STREQ("basic header value", "Basic dXNlcjpwYTpzcw==", v);
	free(v);
}

static void test_token(void)
{
	struct qerr err = {0};
	char *t = NULL;

	T_OK("token field", token_parse("{\"token\":\"abc.def\"}", 19, &t, &err) == 0 && !strcmp(t, "abc.def"));
	free(t);
	T_OK("access_token field",
	     token_parse("{\"access_token\":\"xyz\",\"expires_in\":300}", 39, &t, &err) == 0 && !strcmp(t, "xyz"));
	free(t);
	T_OK("empty token falls back to access_token",
	     token_parse("{\"token\":\"\",\"access_token\":\"q\"}", 31, &t, &err) == 0 && !strcmp(t, "q"));
	free(t);
	T_OK("no token", token_parse("{\"nothing\":1}", 13, &t, &err) < 0 && strstr(err.msg, "neither"));
	T_OK("token with CRLF refused", token_parse("{\"token\":\"a\\r\\nX: y\"}", 21, &t, &err) < 0);
	T_OK("token with space refused", token_parse("{\"token\":\"a b\"}", 15, &t, &err) < 0);
}

static void test_misc(void)
{
	char d[DIGEST_LEN + 1];
	char *p;

	T_OK("json depth ok", json_depth_ok("{\"a\":[{\"b\":\"[[[[[[\"}]}", 21, 3));
	T_OK("json depth counts outside strings only", json_depth_ok("\"[[[[\\\"[[[\"", 11, 1));
	T_OK("json depth too deep", !json_depth_ok("[[[[", 4, 3));
	digest_buf("", 0, d);
	T_STREQ("sha256 of nothing", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d);
	T_OK("digest_matches",
	     digest_matches("abc", 3, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	p = printable("a\nb\x01", 10);
	T_STREQ("printable", "a?b?", p);
	free(p);
	const char *e = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}";
	p = registry_error_message(e, strlen(e));
	T_STREQ("registry error message", "MANIFEST_UNKNOWN: manifest unknown", p);
	free(p);
	T_OK("registry error message of junk", registry_error_message("<html>", 6) == NULL);
}

int main(void)
{
	test_wwwauth();
	test_manifest_good();
	test_manifest_bad();
	test_config();
	test_platform();
	test_authfile();
	test_token();
	test_misc();
	T_DONE();
}
