/* Unit tests: registries.conf parsing (strict, errors with line numbers) and where a pull goes (pull/registries.c). */
#include "../../pull/internal.h"
#include "t.h"

static const char CONF[] = "# qimg registries.conf\n"
                           "unqualified-search-registries = [\"reg.one:5000\", 'reg.two']\n"
                           "\n"
                           "[[registry]]\n"
                           "prefix = \"docker.io\"\n"
                           "location = \"docker.io\"\n"
                           "[[registry.mirror]]\n"
                           "location = \"cache.local:5000\"  # the cluster's pull-through cache\n"
                           "insecure = true\n"
                           "[[ registry.mirror ]]\n"
                           "location = \"cache2.local/hub\"\n"
                           "\n"
                           "[[registry]]\n"
                           "location = \"reg.one:5000\"\n"
                           "insecure = true\n"
                           "\n"
                           "[[registry]]\n"
                           "prefix = \"example.com/team\"\n"
                           "location = \"internal.example:443/mirror/team\"\n"
                           "\n"
                           "[[registry]]\n"
                           "location = \"evil.example\"\n"
                           "blocked = true\n"
                           "\n"
                           "[[registry]]\n"
                           "prefix = \"*.corp.example\"\n"
                           "insecure = true\n"
                           "\n"
                           "[[registry]]\n"
                           "location = \"digest.example\"\n"
                           "mirror-by-digest-only = true\n"
                           "[[registry.mirror]]\n"
                           "location = \"dmirror.example\"\n"
                           "\n"
                           "[aliases]\n"
                           "\"bb\" = \"docker.io/library/busybox\"\n"
                           "app = \"example.com/team/app\"\n";

/* "ref -> endpoint[ insecure][ mirror]" per source, joined by " | ". */
static char *plan(const struct regconf *rc, const char *ref, struct qerr *err)
{
	struct pull_source *v;
	size_t n;
	struct buf b = {0};

	if (regconf_sources(rc, ref, &v, &n, err) < 0)
		return xasprintf("error: %s", err->msg);
	buf_append(&b, "", 0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%s -> %s/%s%s%s", i ? " | " : "", v[i].ref, v[i].endpoint.domain, v[i].endpoint.path,
		           v[i].insecure ? " insecure" : "", v[i].mirror ? " mirror" : "");
	pull_sources_free(v, n);
	return b.p;
}

static void check_plan(const struct regconf *rc, const char *ref, const char *want)
{
	struct qerr err = {0};
	char *got = plan(rc, ref, &err), name[200];

	snprintf(name, sizeof(name), "plan %s", ref);
	T_STREQ(name, want, got);
	free(got);
}

static void bad(const char *text, const char *want)
{
	struct regconf rc;
	struct qerr err = {0};
	char name[200];

	snprintf(name, sizeof(name), "reject: %s", want);
	T_OK(name, regconf_parse(text, "r.conf", &rc, &err) < 0 && strstr(err.msg, want) != NULL);
	if (!strstr(err.msg, want))
		printf("#   got: %s\n", err.msg);
}

static void plans(void)
{
	struct regconf rc;
	struct qerr err = {0};

	T_OK("parse the sample", regconf_parse(CONF, "r.conf", &rc, &err) == 0);
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	T_OK("six registries", rc.nregs == 6);
	check_plan(&rc, "docker.io/library/alpine:3",
	           "docker.io/library/alpine:3 -> cache.local:5000/library/alpine insecure mirror | "
	           "docker.io/library/alpine:3 -> "
	           "cache2.local/hub/library/alpine mirror | docker.io/library/alpine:3 -> docker.io/library/alpine");
	check_plan(&rc, "reg.one:5000/x/y", "reg.one:5000/x/y -> reg.one:5000/x/y insecure");
	check_plan(&rc, "example.com/team/app:1", "example.com/team/app:1 -> internal.example:443/mirror/team/app");
	check_plan(&rc, "example.com/teamx/app", "example.com/teamx/app -> example.com/teamx/app");
	check_plan(&rc, "evil.example/x", "error: evil.example/x: its registry is blocked by r.conf");
	check_plan(&rc, "a.corp.example/x", "a.corp.example/x -> a.corp.example/x insecure");
	check_plan(&rc, "corp.example/x", "corp.example/x -> corp.example/x");
	check_plan(&rc, "digest.example/x:1", "digest.example/x:1 -> digest.example/x");
	check_plan(&rc, "digest.example/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	           "digest.example/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef -> "
	           "dmirror.example/x mirror | "
	           "digest.example/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef -> "
	           "digest.example/x");
	check_plan(&rc, "busybox",
	           "reg.one:5000/busybox -> reg.one:5000/busybox insecure | reg.two/busybox -> reg.two/busybox");
	check_plan(
	    &rc, "bb:1.36",
	    "docker.io/library/busybox:1.36 -> cache.local:5000/library/busybox insecure mirror | "
	    "docker.io/library/busybox:1.36 "
	    "-> cache2.local/hub/library/busybox mirror | docker.io/library/busybox:1.36 -> docker.io/library/busybox");
	check_plan(&rc, "app", "example.com/team/app -> internal.example:443/mirror/team/app");
	check_plan(&rc, "localhost:5000/a", "localhost:5000/a -> localhost:5000/a");
	regconf_free(&rc);

	/* Found by fuzz_registries: a plain prefix after a wildcard for its domain lost to the wildcard. */
	T_OK("plain prefix after a wildcard for its domain",
	     regconf_parse("[[registry]]\nprefix = \"*.corp.example\"\ninsecure = true\n[[registry]]\n"
	                   "prefix = \"a.corp.example\"\nlocation = \"x.io\"\n",
	                   "r.conf", &rc, &err) == 0);
	check_plan(&rc, "a.corp.example/z:1", "a.corp.example/z:1 -> x.io/z");
	check_plan(&rc, "b.corp.example/z:1", "b.corp.example/z:1 -> b.corp.example/z insecure");
	regconf_free(&rc);

	T_OK("empty file", regconf_parse("# nothing\n", "r.conf", &rc, &err) == 0 && rc.nregs == 0);
	check_plan(&rc, "busybox", "busybox -> docker.io/library/busybox");
	regconf_free(&rc);
	T_OK(
	    "all search registries blocked",
	    regconf_parse("unqualified-search-registries=['a.io','b.io']\n[[registry]]\nlocation='a.io'\nblocked=true\n"
	                  "[[registry]]\nlocation='b.io'\nblocked=true\n",
	                  "r.conf", &rc, &err) == 0);
	check_plan(&rc, "x", "error: x: every registry it could come from is blocked by r.conf");
	regconf_free(&rc);
	T_OK("multi-line array, unicode escape",
	     regconf_parse("unqualified-search-registries = [\n  \"a.io\", # one\n  \"b\\u00e9.io\",\n]\n", "r.conf",
	                   &rc, &err) == 0 &&
	         rc.search.n == 2 && !strcmp(rc.search.v[1], "b\xc3\xa9.io"));
	regconf_free(&rc);
}

static void rejects(void)
{
	bad("[[registry]]\nlocation = \"a.io\"\nfoo = true\n", "r.conf:3: unsupported key \"foo\"");
	bad("[[registry]]\nlocation = \"https://a.io\"\n", "r.conf:1: \"https://a.io\" is not host");
	bad("[[registry]]\nlocation = \"a.io/\"\n", "not host[:port][/path]");
	bad("[[registry]]\ninsecure = \"yes\"\n", "r.conf:2: insecure must be true or false");
	bad("[[registry]]\nlocation = \"a.io\"\nlocation = \"b.io\"\n", "r.conf:3: location given twice");
	bad("\n\n[[registry.mirror]]\nlocation = \"m.io\"\n", "r.conf:3: [[registry.mirror]] before any [[registry]]");
	bad("[registries.search]\nregistries = ['a.io']\n", "unsupported table [registries.search]");
	bad("registries = ['a.io']\n", "version 1 of registries.conf is not supported");
	bad("[[registry]]\nlocation = \"a.io\n", "r.conf:2: unterminated string");
	bad("[[registry]]\nlocation = \"a.io\" extra\n", "r.conf:2: unexpected text after the value");
	bad("[[registry]]\nmirror = [{location = \"m\"}]\n", "arrays hold strings only");
	bad("[[registry]]\nlocation = 'a.io'\n[[registry]]\nlocation = 'a.io'\n",
	    "r.conf:3: prefix \"a.io\" already used on line 1");
	bad("[[registry]]\nprefix = '*.a.io'\nlocation = 'b.io'\n", "a wildcard prefix takes no location");
	bad("[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\ninsecure = true\n",
	    "mirror 1 of this registry needs a location");
	bad("[aliases]\n'x' = 'busybox'\n", "the value must be a full name");
	bad("[aliases]\n'a.io/x' = 'a.io/y'\n", "is not a short name");
	bad("unqualified-search-registries = ['a.io/ns']\n", "\"a.io/ns\" is not host[:port]");
	bad("[[registry]]\nlocation = \"a\\qb\"\n", "r.conf:2: unknown escape \\q");
	bad("[[registry]]\nlocation = \"\"\"a\"\"\"\n", "multi-line strings are not supported");
	bad("[[registry]]\nlocation.x = 'a'\n", "dotted keys are not supported");
}

int main(void)
{
	plans();
	rejects();
	T_OK("short names", regconf_is_short("busybox") && regconf_is_short("library/busybox") &&
	                        regconf_is_short("a:1") && !regconf_is_short("a.io/x") &&
	                        !regconf_is_short("localhost/x") && !regconf_is_short("h:5000/x"));
	T_DONE();
}
