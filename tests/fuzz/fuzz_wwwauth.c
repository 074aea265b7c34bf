/* Fuzz target: WWW-Authenticate challenges (pull/auth.c wwwauth_parse). Any input: a Bearer result always has
   a realm, a failure always says why. Inputs starting with byte 0x01: "\1REALM\0SERVICE\0SCOPE" are quoted into
   `Basic realm="x", Bearer realm="...",service="...",scope="..."` (backslash-escaping \ and ") and must parse
   back to exactly those values (unless one holds a control character, which the parser refuses). */
#include <stdio.h>

#include "../../pull/internal.h"
#include "fuzz.h"

static char *quote(const char *s)
{
	struct buf b = {0};
	buf_append(&b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_append(&b, "\\", 1);
		buf_append(&b, s, 1);
	}
	buf_append(&b, "\"", 2);
	return b.p;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

static void round_trip(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size;
	autofree char *realm = fuzz_split(rest, left, 0, &rest, &left);
	autofree char *service = fuzz_split(rest, left, 0, &rest, &left);
	autofree char *scope = fuzz_cstr(rest, left);
	autofree char *qr = quote(realm), *qs = quote(service), *qc = quote(scope);
	autofree char *hdr = xasprintf("Basic realm=\"x\", Bearer realm=%s,service=%s,scope=%s", qr, qs, qc);
	struct auth_challenge c;
	struct qerr err = {0};
	bool want_ok = *realm && !has_ctl(realm) && !has_ctl(service) && !has_ctl(scope) && strlen(hdr) <= (16 << 10);
	int rc = wwwauth_parse(hdr, &c, &err);
	if ((rc == 0) != want_ok) {
		fprintf(stderr, "wwwauth round trip: %s for %s: %s\n", rc ? "refused" : "accepted", hdr, err.msg);
		abort();
	}
	if (rc == 0) {
		if (c.scheme != AUTH_BEARER || strcmp(c.realm, realm) || strcmp(c.service, service) || strcmp(c.scope, scope)) {
			fprintf(stderr, "wwwauth round trip: %s -> realm \"%s\" service \"%s\" scope \"%s\"\n", hdr, c.realm,
			        c.service, c.scope);
			abort();
		}
		auth_challenge_free(&c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_challenge c;
	struct qerr err = {0};
	if (size > 20000)
		return 0;
	if (size > 0 && data[0] == 1)
		round_trip(data + 1, size - 1);
	autofree char *s = fuzz_cstr(data, size);
	if (wwwauth_parse(s, &c, &err) == 0) {
		if (c.scheme == AUTH_NONE || (c.scheme == AUTH_BEARER && (!c.realm || !*c.realm)))
			abort();
		auth_challenge_free(&c);
	} else if (!err.msg[0] || c.realm || c.service || c.scope) {
		abort();
	}
	return 0;
}
