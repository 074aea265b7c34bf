/* Fuzz target: registries.conf (pull/registries.c regconf_parse: the TOML subset and the format), podman's merge
   (regconf_merge) and where a pull goes (regconf_sources). The input is the file's text up to the first NUL
   byte, then a reference (without one, a few fixed ones). A parsed file must have a prefix and a file for every
   registry, one entry per prefix, a location for every mirror, one value and file per alias, and find each of its
   own plain prefixes; merged over itself it keeps the same entries; a failure says FILE:... and leaves nothing
   allocated. Sources are never empty on success, and each names an endpoint with a repository and a tag or
   digest. */
#include <stdio.h>

#include "../../pull/internal.h"
#include "fuzz.h"

static const char *const fixed_refs[] = {
    "busybox", "bb:1", "docker.io/library/alpine:3.19", "localhost:5000/x/y",
    "example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "a.corp.example/z:1", NULL,
};

static void check_conf(const struct regconf *rc)
{
	if (!rc->path || rc->alias_names.n != rc->alias_values.n || rc->alias_names.n != rc->alias_files.n ||
	    (rc->search.n && !rc->search_set) || (rc->search_set && !rc->search_file) ||
	    (rc->mode != SNM_UNSET && !rc->mode_file) || (rc->cred_helpers.n && !rc->cred_helpers_set))
		abort();
	for (size_t i = 0; i < rc->alias_names.n; i++)
		for (size_t k = 0; k < i; k++)
			if (!strcmp(rc->alias_names.v[i], rc->alias_names.v[k]))
				abort(); /* one value per alias */
	for (size_t i = 0; i < rc->nregs; i++) {
		const struct regconf_registry *r = &rc->regs[i];
		if (!r->prefix || !*r->prefix || !r->file)
			abort();
		for (size_t k = 0; k < i; k++)
			if (!strcmp(r->prefix, rc->regs[k].prefix))
				abort(); /* one entry per prefix */
		for (size_t k = 0; k < r->nmirrors; k++)
			if (!r->mirrors[k].location || !*r->mirrors[k].location)
				abort();
		if (strncmp(r->prefix, "*.", 2) != 0 && regconf_find(rc, r->prefix) != r) {
			fprintf(stderr, "registry %zu: prefix \"%s\" finds another entry\n", i, r->prefix);
			abort();
		}
	}
}

static void check_sources(const struct regconf *rc, const char *ref)
{
	struct pull_source *v = NULL;
	struct qerr err = {0};
	size_t n = 0;

	if (regconf_sources(rc, ref, &v, &n, &err) < 0) {
		if (!err.msg[0] || v || n)
			abort(); /* a failure says why and hands back nothing */
		return;
	}
	if (n == 0 || !v)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct image_ref *e = &v[i].endpoint;
		if (!v[i].ref || !e->domain || !*e->domain || !e->path || !*e->path || (!e->tag && !e->digest)) {
			fprintf(stderr, "source %zu of \"%s\" is incomplete\n", i, ref);
			abort();
		}
	}
	pull_sources_free(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct regconf rc;
	struct qerr err = {0};
	const uint8_t *rest;
	size_t rest_len;

	if (size > 64 << 10)
		return 0;
	autofree char *text = fuzz_split(data, size, 0, &rest, &rest_len);
	if (regconf_parse(text, "r.conf", &rc, &err) < 0) {
		if (strncmp(err.msg, "r.conf", 6) != 0 || rc.path || rc.regs || rc.nregs || rc.search.n ||
		    rc.alias_names.n) {
			fprintf(stderr, "failure without the file name, or with leftovers: %s\n", err.msg);
			abort();
		}
		return 0;
	}
	check_conf(&rc);
	{ /* the file merged over itself (a drop-in naming the same prefixes, aliases and lists) changes nothing */
		struct regconf again;
		size_t nregs = rc.nregs, naliases = rc.alias_names.n, nsearch = rc.search.n;

		if (regconf_parse(text, "r.conf", &again, &err) < 0)
			abort(); /* parsing is deterministic */
		regconf_merge(&rc, &again);
		if (again.nregs || again.path || rc.nregs != nregs || rc.alias_names.n != naliases || rc.search.n != nsearch)
			abort();
		check_conf(&rc);
	}
	if (rest_len > 0) {
		autofree char *ref = fuzz_cstr(rest, rest_len);
		check_sources(&rc, ref);
	} else {
		for (size_t i = 0; fixed_refs[i]; i++)
			check_sources(&rc, fixed_refs[i]);
	}
	regconf_free(&rc);
	return 0;
}
