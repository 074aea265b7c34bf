/* Unit tests: registries.conf parsing (strict, errors with line numbers) and where a pull goes (pull/registries.c). */
#include "../../pull/internal.h"
#include "t.h"
#include <sys/stat.h>

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
	bad("[[registry]]\nlocation = \"a.io\"\nfoo = true\n", "r.conf:3: unsupported key \"foo\" in [[registry]]");
	bad("short-name-mode = 'enforcing'\nsearch = ['a.io']\n", "r.conf:2: unsupported key \"search\"");
	bad("[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\nlocation = 'm.io'\nweight = true\n",
	    "r.conf:5: unsupported key \"weight\" in [[registry.mirror]]");
	bad("[[registry]]\nlocation = \"https://a.io\"\n", "r.conf:1: \"https://a.io\" is not host");
	bad("[[registry]]\ninsecure = \"yes\"\n", "r.conf:2: insecure must be true or false");
	bad("[[registry]]\nlocation = \"a.io\"\nlocation = \"b.io\"\n", "r.conf:3: location given twice (first on line 2)");
	bad("\n\n[[registry.mirror]]\nlocation = \"m.io\"\n", "r.conf:3: registry must be an array of tables");
	bad("[[registry]]\nlocation = \"a.io\n", "r.conf:2: unterminated string");
	bad("[[registry]]\nlocation = \"a.io\" extra\n", "r.conf:2: unexpected text after the value");
	bad("[[registry]]\nmirror = ['m.io']\n", "r.conf:2: each mirror must be a table");
	bad("[[registry]]\nlocation = 'a.io'\ninsecure = true\n[[registry]]\nprefix = 'a.io/x'\nlocation = 'a.io'\n",
	    "r.conf:4: registry \"a.io\" is defined on line 1 too, with another insecure setting");
	bad("[[registry]]\nprefix = '*.a.io'\nlocation = 'b.io'\n", "a wildcard prefix takes no location");
	bad("[[registry]]\nprefix = 'a.io/x'\n", "r.conf:1: prefix \"a.io/x\" needs a location");
	bad("[[registry]]\nprefix = '*.a.io:5000'\n", "must be *.DOMAIN");
	bad("[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\ninsecure = true\n",
	    "mirror 1 of this registry needs a location");
	bad("[aliases]\n'x' = 'busybox'\n", "the value must be a full name");
	bad("[aliases]\n'x' = 'a.io/busybox:1'\n", "without tag or digest");
	bad("[aliases]\n'a.io/x' = 'a.io/y'\n", "is not a short name");
	bad("[aliases]\nx = true\n", "r.conf:2: alias \"x\" must be a string");
	bad("unqualified-search-registries = ['a.io/ns']\n", "\"a.io/ns\" is not host[:port]");
	bad("unqualified-search-registries = 'a.io'\n",
	    "r.conf:1: unqualified-search-registries must be an array of strings");
	bad("unqualified-search-registries = ['a.io', true]\n", "must be an array of strings");
	bad("[[registry]]\nlocation = \"a\\qb\"\n", "r.conf:2: unknown escape \\q");
	bad("[[registry]]\nlocation = \"a\\u00\"\n", "r.conf:2: bad \\u escape");
	bad("[[registry]]\nlocation = \"\"\"a.io\n", "unterminated string");
	bad("[[registry]]\nlocation = 'a\x01'\n", "r.conf:2: control character in a string");
	bad("[[registry]]\nlocation.x = 'a'\n", "r.conf:2: location must be a string");
	bad("short-name-mode = 'prompt'\n",
	    "r.conf:1: short-name-mode must be \"enforcing\", \"permissive\" or \"disabled\"");
	bad("short-name-mode = 1\n", "r.conf:1: expected a string, true, false, an array or an inline table");
	bad("[[registry]]\nlocation = 'a.io'\npull-from-mirror = 'all'\n",
	    "r.conf:3: pull-from-mirror belongs to a [[registry.mirror]]");
	bad("[[registry]]\nlocation = 'a.io'\n[[registry.mirror]]\nlocation = 'm.io'\npull-from-mirror = 'tags'\n",
	    "r.conf:5: pull-from-mirror must be \"all\", \"digest-only\" or \"tag-only\"");
	bad("[[registry]]\nlocation = 'a.io'\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = 'm.io'\n"
	    "pull-from-mirror = 'tag-only'\n",
	    "r.conf:1: mirror-by-digest-only and a mirror's pull-from-mirror cannot be set together");
	/* the TOML subset's own errors */
	bad("[aliases]\na = 'x.io/a'\n[aliases]\n", "r.conf:3: [aliases] is already defined on line 1");
	bad("registry = [{location = 'a.io'}]\n[[registry]]\n", "r.conf:2: [[registry]]: already defined on line 1");
	bad("registry = [{location = 'a.io',\n}]\n", "r.conf:1: an inline table must fit on one line");
	bad("registry = [{location = 'a.io'\n}]\n", "r.conf:1: expected , or } in an inline table");
	bad("registry = [{location = 'a.io',}]\n", "a trailing comma is not allowed in an inline table");
	bad("registry = [{location = 'a.io', location = 'b.io'}]\n", "r.conf:1: location given twice");
	bad("a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", "nested more than 32 deep");
	bad("[[registry]\nlocation = 'a.io'\n", "r.conf:1: unterminated table header [registry");
	bad("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a = 'x'\n",
	    "r.conf:1: a dotted key of more than 32 parts");
	bad("'''x''' = 'y'\n", "a key cannot be a multi-line string");
	bad("= 'y'\n", "r.conf:1: expected a key");
	/* version 1: not mixed with version 2 */
	bad("unqualified-search-registries = ['a.io']\n[registries.search]\nregistries = ['b.io']\n",
	    "r.conf:2: version 1 [registries.*] tables mixed with version 2 keys (\"unqualified-search-registries\" "
	    "on line 1)");
	bad("[registries.search]\nregistries = ['a.io']\nmirrors = ['b.io']\n",
	    "r.conf:3: unsupported key \"mirrors\" in [registries.search]");
	bad("[registries.proxy]\nregistries = ['a.io']\n", "r.conf:1: unsupported key \"registries.proxy\"");
}

/* A podman-style file: every version-2 key, the TOML forms podman's own files use. */
static void podman_file(void)
{
	static const char text[] =
	    "# containers-registries.conf(5), as a site writes it\n"
	    "unqualified-search-registries = [\n"
	    "  \"registry.fedoraproject.org\",  # Fedora\n"
	    "  'quay.io',\n"
	    "  \"docker.io\", # trailing comma next\n"
	    "]\n"
	    "short-name-mode = \"enforcing\"\n"
	    "credential-helpers = [ \"containers-auth.json\", 'pass' ]\n"
	    "additional-layer-store-auth-helper = \"\"\n"
	    "\n"
	    "[[registry]]\n"
	    "prefix = \"docker.io\"\n"
	    "location = \"docker.io\"\n"
	    "mirror = [ { location = \"cache.local:5000\", insecure = true, pull-from-mirror = \"tag-only\" },\n"
	    "           { location = 'digest.local', pull-from-mirror = \"digest-only\" } ]\n"
	    "\n"
	    "[[registry]]\n"
	    "location = \"\"\"\n"
	    "quay.io\"\"\"\n"
	    "[[registry.mirror]]\n"
	    "location = \"q\\u0075ay-mirror.local\"\n"
	    "pull-from-mirror = \"all\"\n"
	    "\n"
	    "[aliases]\n"
	    "  # almalinux\n"
	    "  \"almalinux\" = \"docker.io/library/almalinux\"\n"
	    "  \"opensuse/leap\" = \"registry.opensuse.org/opensuse/leap\"\n"
	    "  \"alpine\" = \"docker.io/alpine\"\n";
	static const char digest[] = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct regconf rc;
	struct qerr err = {0};
	char ref[200], want[600];

	T_OK("podman file parses", regconf_parse(text, "p.conf", &rc, &err) == 0);
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	T_OK("podman: three search registries",
	     rc.search.n == 3 && rc.search_set && !strcmp(rc.search.v[2], "docker.io"));
	T_OK("podman: enforcing", rc.mode == SNM_ENFORCING && !strcmp(rc.mode_file, "p.conf"));
	T_OK("podman: credential helpers", rc.cred_helpers.n == 2 && !strcmp(rc.cred_helpers.v[1], "pass"));
	T_OK("podman: inline-table mirrors", rc.nregs == 2 && rc.regs[0].nmirrors == 2 &&
	                                         rc.regs[0].mirrors[0].insecure &&
	                                         rc.regs[0].mirrors[1].pull_from == PFM_DIGEST_ONLY);
	T_OK("podman: multi-line string and \\u escape",
	     !strcmp(rc.regs[1].location, "quay.io") && !strcmp(rc.regs[1].mirrors[0].location, "quay-mirror.local"));
	T_OK("podman: alias normalized",
	     rc.alias_values.n == 3 && !strcmp(rc.alias_values.v[2], "docker.io/library/alpine"));
	/* pull-from-mirror: the tag-only mirror for tags, the digest-only one for digests */
	check_plan(&rc, "docker.io/library/x:1",
	           "docker.io/library/x:1 -> cache.local:5000/library/x insecure mirror | docker.io/library/x:1 -> "
	           "docker.io/library/x");
	snprintf(ref, sizeof(ref), "docker.io/library/x%s", digest);
	snprintf(want, sizeof(want), "%s -> digest.local/library/x mirror | %s -> docker.io/library/x", ref, ref);
	check_plan(&rc, ref, want);
	/* enforcing: an ambiguous short name is refused (qimg never prompts); an alias or a full name is not */
	check_plan(&rc, "busybox",
	           "error: short-name resolution enforced but cannot prompt without a TTY: \"busybox\" could be "
	           "registry.fedoraproject.org/busybox, quay.io/busybox, docker.io/busybox (short-name-mode = "
	           "\"enforcing\" in p.conf); give the full name or add an [aliases] entry");
	check_plan(&rc, "alpine:3",
	           "docker.io/library/alpine:3 -> cache.local:5000/library/alpine insecure mirror | "
	           "docker.io/library/alpine:3 -> docker.io/library/alpine");
	check_plan(&rc, "opensuse/leap", "registry.opensuse.org/opensuse/leap -> registry.opensuse.org/opensuse/leap");
	rc.mode = SNM_PERMISSIVE;
	check_plan(&rc, "x",
	           "registry.fedoraproject.org/x -> registry.fedoraproject.org/x | quay.io/x -> quay-mirror.local/x "
	           "mirror | quay.io/x -> quay.io/x | docker.io/x -> cache.local:5000/library/x insecure mirror | "
	           "docker.io/x -> docker.io/library/x");
	regconf_free(&rc);

	T_OK("registry as an array of inline tables",
	     regconf_parse("registry = [{prefix = \"a.io/x\", location = \"b.io/y\", mirror = [{location = \"m.io\"}]},"
	                   "\n  {location='c.io', blocked=true},]\n",
	                   "r.conf", &rc, &err) == 0 &&
	         rc.nregs == 2);
	check_plan(&rc, "a.io/x/z:1", "a.io/x/z:1 -> m.io/z mirror | a.io/x/z:1 -> b.io/y/z");
	regconf_free(&rc);
	T_OK("literal strings, trailing slash trimmed",
	     regconf_parse("[[registry]]\nlocation = 'a.io/'\n[aliases]\n'x' = '''a.io/y'''\n", "r.conf", &rc, &err) ==
	             0 &&
	         !strcmp(rc.regs[0].location, "a.io") && !strcmp(rc.alias_values.v[0], "a.io/y"));
	regconf_free(&rc);
	T_OK("multi-line basic string: line-ending backslash",
	     regconf_parse("[aliases]\nx = \"\"\"a.io/\\\n    y\"\"\"\n", "r.conf", &rc, &err) == 0 &&
	         !strcmp(rc.alias_values.v[0], "a.io/y"));
	regconf_free(&rc);
	T_OK("the same prefix twice: the first wins, as podman does",
	     regconf_parse("[[registry]]\nlocation = 'a.io'\n[[registry]]\nlocation = 'a.io'\n[[registry]]\n"
	                   "location = 'b.io'\n",
	                   "r.conf", &rc, &err) == 0 &&
	         rc.nregs == 2 && rc.regs[0].line == 1 && !strcmp(rc.regs[1].prefix, "b.io"));
	regconf_free(&rc);
	T_OK("unqualified-search-registries = [] parses",
	     regconf_parse("unqualified-search-registries = []\n", "e.conf", &rc, &err) == 0 && rc.search_set);
	check_plan(&rc, "x",
	           "error: short name \"x\" did not resolve to an alias and no unqualified-search registries are "
	           "defined in e.conf");
	check_plan(&rc, "docker.io/x", "docker.io/x -> docker.io/library/x");
	regconf_free(&rc);
	T_OK("enforcing with one search registry is not ambiguous",
	     regconf_parse("short-name-mode='enforcing'\nunqualified-search-registries=['a.io']\n", "r.conf", &rc,
	                   &err) == 0);
	check_plan(&rc, "x:2", "a.io/x:2 -> a.io/x");
	regconf_free(&rc);
}

/* Version 1, converted as podman converts it. */
static void version1(void)
{
	struct regconf rc;
	struct qerr err = {0};

	T_OK("version 1 parses",
	     regconf_parse("[registries.search]\nregistries = ['a.io', 'b.io:5000']\n\n[registries.insecure]\n"
	                   "registries = ['h.io']\n\n[registries.block]\nregistries = ['evil.io', 'b.io:5000']\n",
	                   "v1.conf", &rc, &err) == 0);
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	T_OK("version 1: three registries", rc.nregs == 3 && rc.search.n == 2 && rc.search_set);
	check_plan(&rc, "x", "a.io/x -> a.io/x");
	check_plan(&rc, "evil.io/x", "error: evil.io/x: its registry is blocked by v1.conf");
	check_plan(&rc, "h.io/x", "h.io/x -> h.io/x insecure");
	regconf_free(&rc);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		printf("FAIL write %s\n", path);
		exit(1);
	}
}

/* Several files: podman's order and merge rules (containers-registries.conf.d(5)), then qimg's own file. */
static void merging(void)
{
	char tmpl[] = "/tmp/test_regconf.XXXXXX", sysd[300], userd[300], sub[300], sys[300], user[300], qimg[300],
	     cache[300], none[300], want[400];
	const char *d = mkdtemp(tmpl);
	struct regconf rc;
	struct qerr err = {0};
	struct regconf_files f;

	if (!d) {
		printf("FAIL mkdtemp\n");
		exit(1);
	}
	snprintf(sysd, sizeof(sysd), "%s/sys.d", d);
	snprintf(userd, sizeof(userd), "%s/user.d", d);
	snprintf(sub, sizeof(sub), "%s/sys.d/sub.conf", d);
	snprintf(sys, sizeof(sys), "%s/sys.conf", d);
	snprintf(user, sizeof(user), "%s/user.conf", d);
	snprintf(qimg, sizeof(qimg), "%s/qimg.conf", d);
	snprintf(cache, sizeof(cache), "%s/cache.conf", d);
	snprintf(none, sizeof(none), "%s/none.conf", d);
	if (mkdir(sysd, 0755) || mkdir(userd, 0755) || mkdir(sub, 0755)) { /* sub.conf: a directory, skipped */
		printf("FAIL mkdir\n");
		exit(1);
	}
	put(d, "sys.conf",
	    "unqualified-search-registries = ['a.io', 'b.io']\nshort-name-mode = 'enforcing'\n"
	    "[[registry]]\nprefix = 'docker.io'\nlocation = 'docker.io'\n[[registry.mirror]]\nlocation = 'm1.io'\n"
	    "[[registry]]\nlocation = 'keep.io'\ninsecure = true\n"
	    "[aliases]\nbb = 'a.io/busybox'\nold = 'a.io/old'\n");
	put(sysd, "10-first.conf", "[aliases]\nbb = 'b.io/busybox'\nsh = 'a.io/sh'\n");
	put(sysd, "20-second.conf",
	    "[[registry]]\nprefix = 'docker.io'\nlocation = 'docker.io'\n[[registry.mirror]]\nlocation = 'm2.io'\n"
	    "[aliases]\nold = ''\n");
	put(sysd, "30-ignored.txt", "this is not read\n");
	put(userd, "50-user.conf", "short-name-mode = 'permissive'\nunqualified-search-registries = ['c.io']\n");
	put(d, "qimg.conf", "[[registry]]\nlocation = 'keep.io'\nblocked = true\n");
	put(d, "cache.conf", "[aliases]\nsh = 'c.io/sh'\n");

	f = (struct regconf_files){.user = user, .system = sys, .system_dir = sysd, .user_dir = userd};
	T_OK("merge: containers files", regconf_load_files(&f, &rc, &err) == 0);
	T_OK("merge: a drop-in's [[registry]] replaces the one with its prefix",
	     rc.nregs == 2 && rc.regs[0].nmirrors == 1 && !strcmp(rc.regs[0].mirrors[0].location, "m2.io") &&
	         strstr(rc.regs[0].file, "20-second.conf"));
	T_OK("merge: the user's drop-in comes last", rc.mode == SNM_PERMISSIVE && rc.search.n == 1 &&
	                                                  !strcmp(rc.search.v[0], "c.io") &&
	                                                  strstr(rc.search_file, "user.d/50-user.conf"));
	check_plan(&rc, "bb:1", "b.io/busybox:1 -> b.io/busybox");
	check_plan(&rc, "old", "c.io/old -> c.io/old"); /* reset by "" */
	check_plan(&rc, "keep.io/x", "keep.io/x -> keep.io/x insecure");
	regconf_free(&rc);

	f.qimg = qimg, f.aliases_cache = cache;
	T_OK("merge: qimg's file and the aliases cache", regconf_load_files(&f, &rc, &err) == 0);
	snprintf(want, sizeof(want), "error: keep.io/x: its registry is blocked by %s", qimg);
	check_plan(&rc, "keep.io/x", want);
	check_plan(&rc, "sh", "c.io/sh -> c.io/sh");
	T_OK("merge: path lists every file read",
	     rc.path && strstr(rc.path, "sys.conf, ") && strstr(rc.path, "cache.conf"));
	regconf_free(&rc);

	/* a user registries.conf replaces the system's, and the system's drop-ins with it */
	put(d, "user.conf", "unqualified-search-registries = ['u.io']\n");
	f.user_dir = NULL;
	T_OK("merge: user file", regconf_load_files(&f, &rc, &err) == 0);
	check_plan(&rc, "bb", "u.io/bb -> u.io/bb");
	regconf_free(&rc);

	/* errors name the file and line; a drop-in must be version 2 */
	f.user_dir = userd;
	put(userd, "60-bad.conf", "\n[[registry]]\nlocation = 'x.io'\nmirrors = ['m.io']\n");
	T_OK("merge: an unknown key in a drop-in",
	     regconf_load_files(&f, &rc, &err) < 0 && strstr(err.msg, "user.d/60-bad.conf:4: unsupported key \"mirrors\""));
	put(userd, "60-bad.conf", "[registries.search]\nregistries = ['a.io']\n");
	T_OK("merge: version 1 in a drop-in",
	     regconf_load_files(&f, &rc, &err) < 0 &&
	         strstr(err.msg, "60-bad.conf:1: a registries.conf.d file must use version 2"));
	f = (struct regconf_files){.containers = none};
	T_OK("merge: $CONTAINERS_REGISTRIES_CONF must exist",
	     regconf_load_files(&f, &rc, &err) < 0 && strstr(err.msg, "none.conf"));
	f = (struct regconf_files){.qimg = none, .qimg_must = true};
	T_OK("merge: $QIMG_REGISTRIES_CONF must exist", regconf_load_files(&f, &rc, &err) < 0);
	f = (struct regconf_files){.system = none, .qimg = none, .aliases_cache = none};
	T_OK("merge: no file at all is an empty configuration",
	     regconf_load_files(&f, &rc, &err) == 0 && rc.nregs == 0 && !rc.path);
	regconf_free(&rc);
	put(d, "cache.conf", "[[registry]]\nlocation = 'a.io'\n");
	f = (struct regconf_files){.aliases_cache = cache};
	T_OK("merge: the aliases cache holds aliases only",
	     regconf_load_files(&f, &rc, &err) < 0 && strstr(err.msg, "cache.conf:1: unsupported key \"registry\""));
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", d);
	}
}

int main(void)
{
	plans();
	rejects();
	podman_file();
	version1();
	merging();
	T_OK("short names", regconf_is_short("busybox") && regconf_is_short("library/busybox") &&
	                        regconf_is_short("a:1") && !regconf_is_short("a.io/x") &&
	                        !regconf_is_short("localhost/x") && !regconf_is_short("h:5000/x"));
	T_DONE();
}
