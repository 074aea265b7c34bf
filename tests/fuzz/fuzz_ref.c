/* Fuzz target: image references (pull/ref.c ref_parse). A parsed reference must print back to a string that
   parses to itself, and its store name must escape to one path component that unescapes to the name. */
#include <stdio.h>

#include "../../pull/pull.h"
#include "fuzz.h"

static void check_parsed(const struct image_ref *r)
{
	struct image_ref again;
	struct qerr err = {0};
	autofree char *s = ref_string(r);
	autofree char *name = ref_name(r);
	if (!r->domain || !r->path || (!r->tag && !r->digest) || !ref_endpoint(r) || !ref_key(r))
		abort();
	if (ref_parse(s, &again, &err) < 0) {
		fprintf(stderr, "ref_string gave \"%s\", which does not parse: %s\n", s, err.msg);
		abort();
	}
	autofree char *s2 = ref_string(&again);
	if (strcmp(s, s2) != 0) {
		fprintf(stderr, "ref round trip: \"%s\" -> \"%s\"\n", s, s2);
		abort();
	}
	ref_free(&again);
	autofree char *esc = store_name_escape(name);
	autofree char *back = store_name_unescape(esc);
	if (strchr(esc, '/') || !strcmp(esc, ".") || !strcmp(esc, "..") || strcmp(back, name) != 0) {
		fprintf(stderr, "store name \"%s\" escapes to \"%s\" (back: \"%s\")\n", name, esc, back);
		abort();
	}
	if (r->digest && !store_digest_valid(r->digest))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_ref r;
	struct qerr err = {0};
	if (size > 4096)
		return 0;
	autofree char *s = fuzz_cstr(data, size);
	if (ref_parse(s, &r, &err) == 0) {
		check_parsed(&r);
		ref_free(&r);
	} else if (!err.msg[0] || r.domain || r.path || r.tag || r.digest) {
		abort(); /* a failure says why and leaves nothing allocated */
	}
	return 0;
}
