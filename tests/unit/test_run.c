/* Unit tests: the runner's pure parts (run/config.c, run/caps.c, userns/idmap.c, run/kept.c names). */
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../run/run_int.h"
#include "t.h"

static char *join(const struct strv *v)
{
	struct buf b = {0};
	buf_append(&b, "", 0);
	for (size_t i = 0; i < v->n; i++)
		buf_printf(&b, "%s%s", i ? "|" : "", v->v[i]);
	return b.p;
}

static void argv_case(const char *name, const char *ep_img, const char *cmd_img, const char *entrypoint,
                      char *const *args, size_t nargs, const char *want)
{
	struct image_spec spec = {0};
	if (ep_img)
		strv_push(&spec.entrypoint, ep_img);
	if (cmd_img) {
		strv_push(&spec.cmd, cmd_img);
		strv_push(&spec.cmd, "c2");
	}
	struct strv out = {0};
	struct qerr err = {0};
	int rc = run_argv_build(&spec, entrypoint, args, nargs, &out, &err);
	char *got = rc < 0 ? xasprintf("error: %s", err.msg) : join(&out);
	if (want[0] == '!')
		T_OK(name, rc < 0 && strstr(got, want + 1));
	else
		T_STREQ(name, want, got);
	free(got);
	strv_free(&out);
	store_spec_free(&spec);
}

static void test_argv(void)
{
	char *args[] = {"a1", "a2"};
	argv_case("argv: entrypoint + cmd", "ep", "c1", NULL, NULL, 0, "ep|c1|c2");
	argv_case("argv: args replace cmd", "ep", "c1", NULL, args, 2, "ep|a1|a2");
	argv_case("argv: cmd only", NULL, "c1", NULL, NULL, 0, "c1|c2");
	argv_case("argv: args only", NULL, "c1", NULL, args, 2, "a1|a2");
	argv_case("argv: --entrypoint clears cmd", "ep", "c1", "/x", NULL, 0, "/x");
	argv_case("argv: --entrypoint + args", "ep", "c1", "/x", args, 2, "/x|a1|a2");
	argv_case("argv: --entrypoint \"\" + args", "ep", "c1", "", args, 2, "a1|a2");
	argv_case("argv: --entrypoint \"\" alone", "ep", "c1", "", NULL, 0, "!no command specified");
	argv_case("argv: nothing at all", NULL, NULL, NULL, NULL, 0, "!no command specified");
}

static void test_env(void)
{
	struct image_spec spec = {0};
	strv_push(&spec.env, "FOO=image");
	strv_push(&spec.env, "KEEP=1");
	strv_push(&spec.env, "NOEQUALS");
	struct strv user = {0}, out = {0};
	strv_push(&user, "FOO=cli");
	strv_push(&user, "NEW=x=y");
	run_env_build(&spec, &user, "h1", true, &out);
	char *got = join(&out);
	T_STREQ("env: image, then -e, then defaults",
	        "FOO=cli|KEEP=1|NEW=x=y|PATH=" RUN_DEFAULT_PATH "|HOSTNAME=h1|TERM=xterm", got);
	free(got);
	T_STREQ("env: get", "x=y", run_env_get(&out, "NEW"));
	T_OK("env: get missing", run_env_get(&out, "NE") == NULL);
	run_env_default(&out, "HOME", "/root");
	run_env_default(&out, "HOME", "/other");
	T_STREQ("env: default only when missing", "/root", run_env_get(&out, "HOME"));
	strv_free(&out);
	strv_free(&user);

	struct strv f = {0};
	struct qerr err = {0};
	setenv("QIMG_T_HOSTVAR", "hv", 1);
	unsetenv("QIMG_T_UNSET");
	int rc = run_env_text_parse("\xef\xbb\xbf# comment\n\n  A=1\nB= spaced \r\nQIMG_T_HOSTVAR\nQIMG_T_UNSET\nC=\n",
	                            "f", &f, &err);
	got = join(&f);
	T_OK("env-file: parses", rc == 0);
	T_STREQ("env-file: docker's rules", "A=1|B= spaced |QIMG_T_HOSTVAR=hv|C=", got);
	free(got);
	strv_free(&f);
	rc = run_env_text_parse("BAD KEY=1\n", "f", &f, &err);
	T_OK("env-file: space in a name is refused", rc < 0 && strstr(err.msg, "f:1"));
	strv_free(&f);
	store_spec_free(&spec);
}

static const char PASSWD[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "app:x:1000:1000:app:/home/app:/bin/sh\n"
                             "broken line\n"
                             "nohome:x:1001:1001:::/bin/sh\n";
static const char GROUP[] = "root:x:0:\nusers:x:100:app,other\nwheel:x:10:root\napp:x:1000:\nextra:x:2000:app\n";

static void user_case(const char *name, const char *spec, const char *want)
{
	struct run_user u;
	struct qerr err = {0};
	char got[1200];
	if (run_user_resolve(spec, PASSWD, GROUP, &u, &err) < 0) {
		snprintf(got, sizeof got, "error: %s", err.msg);
	} else {
		int n = snprintf(got, sizeof got, "%u:%u:%s:", u.uid, u.gid, u.home);
		for (size_t i = 0; i < u.ngroups; i++)
			n += snprintf(got + n, sizeof got - (size_t)n, "%s%u", i ? "," : "", u.groups[i]);
		run_user_free(&u);
	}
	if (want[0] == '!')
		T_OK(name, strstr(got, want + 1) != NULL);
	else
		T_STREQ(name, want, got);
}

static void test_user(void)
{
	user_case("user: default root + member groups", NULL, "0:0:/root:0,10");
	user_case("user: by name", "app", "1000:1000:/home/app:1000,100,2000");
	user_case("user: by uid", "1000", "1000:1000:/home/app:1000,100,2000");
	user_case("user: unknown uid -> gid 0, HOME /", "4242", "4242:0:/:0");
	user_case("user: uid:gid", "4242:77", "4242:77:/:77");
	user_case("user: name:group name", "app:users", "1000:100:/home/app:100,2000");
	user_case("user: empty home -> /", "nohome", "1001:1001:/:1001");
	user_case("user: unknown name", "nosuch", "!unable to find user nosuch");
	user_case("user: unknown group", "app:nosuch", "!unable to find group nosuch");
	struct run_user u;
	struct qerr err = {0};
	T_OK("user: no passwd file, numeric", run_user_resolve("5", NULL, NULL, &u, &err) == 0 && u.uid == 5);
	run_user_free(&u);
	T_OK("user: no passwd file, name", run_user_resolve("app", NULL, NULL, &u, &err) < 0);
}

static void test_subid(void)
{
	const char *text = "# comment\nalice:100000:65536\n1001:200000:1000\nbob:300000:0\nbob:400000:10\n";
	uint32_t s = 0, c = 0;
	T_OK("subid: by name", userns_subid_find(text, "alice", 1000, &s, &c) == 0 && s == 100000 && c == 65536);
	T_OK("subid: by uid", userns_subid_find(text, "carol", 1001, &s, &c) == 0 && s == 200000 && c == 1000);
	T_OK("subid: empty range skipped, first valid", userns_subid_find(text, "bob", 7, &s, &c) == 0 && s == 400000);
	T_OK("subid: missing", userns_subid_find(text, "dave", 7, &s, &c) < 0);
	struct idmap m = {
	    .uid = {{0, 1000, 1}, {1, 100000, 65536}}, .gid = {{0, 1000, 1}, {1, 100000, 65536}}, .nuid = 2, .ngid = 2};
	char *str = userns_idmap_string(&m);
	T_STREQ("idmap: string", "u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536", str);
	free(str);
}

static void test_caps(void)
{
	uint64_t m = 0;
	T_OK("caps: CHOWN", run_cap_parse("CHOWN", &m) == 0 && m == 1);
	T_OK("caps: cap_net_raw", run_cap_parse("cap_net_raw", &m) == 0 && m == ((uint64_t)1 << 13));
	T_OK("caps: ALL", run_cap_parse("all", &m) == 0 && m == RUN_CAPS_ALL);
	T_OK("caps: unknown", run_cap_parse("FLY", &m) < 0);
	uint64_t sys_admin = (uint64_t)1 << 21, chown = 1;
	T_OK("caps: default has CHOWN, not SYS_ADMIN", (run_caps_default & chown) && !(run_caps_default & sys_admin));
	T_OK("caps: add", run_caps_effective_set(sys_admin, 0) == (run_caps_default | sys_admin));
	T_OK("caps: drop", run_caps_effective_set(0, chown) == (run_caps_default & ~chown));
	T_OK("caps: drop ALL then add", run_caps_effective_set(chown, RUN_CAPS_ALL) == chown);
	T_OK("caps: add ALL", run_caps_effective_set(RUN_CAPS_ALL, 0) == RUN_CAPS_ALL);
	T_OK("caps: known includes CHOWN..SETFCAP", (run_caps_known() & 0xffffffffu) == 0xffffffffu);
}

static void test_names(void)
{
	T_OK("name: simple", run_name_valid("web-1.a_b"));
	T_OK("name: empty", !run_name_valid(""));
	T_OK("name: dot first", !run_name_valid(".x"));
	T_OK("name: slash", !run_name_valid("a/b"));
	T_OK("name: dotdot", !run_name_valid(".."));
}

#if !defined(__SANITIZE_ADDRESS__) /* AddressSanitizer handles the overflowing child's SIGSEGV itself */
/* Recurse until the stack runs out: each frame writes 512 bytes (below one page, so no frame skips a guard). */
static volatile int stack_eater_limit = 1 << 30; /* never reached: the stack ends long before */
static int stack_eater(int n)
{
	volatile char frame[512];
	if (n >= stack_eater_limit)
		return 0;
	for (size_t i = 0; i < sizeof frame; i++)
		frame[i] = (char)0x5a;
	return stack_eater(n + 1) + frame[n % 512];
}

static int overflow_child(void *arg)
{
	(void)arg;
	return stack_eater(0);
}

/* PID 1's stack (CLONE_VM, issue 13): a child that overflows it must fault in the guard, not write over the
   memory below it. The control (guard 0) shows the test can tell: there the page below is overwritten. */
static bool overflow_hits_page_below(size_t guard, int *sig)
{
	const size_t size = 256u << 10, page = (size_t)sysconf(_SC_PAGESIZE);
	char *top = run_stack_alloc(size, guard);
	if (!top)
		return false;
	char *below = top - size - guard - page;
	char *canary = mmap(below, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (canary != below)
		return *sig = -1, false;
	memset(canary, 0xaa, page);
	pid_t pid = clone(overflow_child, top, CLONE_VM | SIGCHLD, NULL);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return *sig = -1, false;
	*sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	bool touched = false;
	for (size_t i = 0; i < page; i++)
		touched |= (unsigned char)canary[i] != 0xaa;
	munmap(canary, page);
	munmap(top - size - guard, size + guard);
	return touched;
}

static void test_stack_guard(void)
{
	int sig = 0;
	T_OK("stack guard: an overflow leaves the memory below untouched", !overflow_hits_page_below(64u << 10, &sig));
	T_OK("stack guard: the overflowing child dies of SIGSEGV", sig == SIGSEGV);
	T_OK("stack guard: without a guard the memory below is overwritten", overflow_hits_page_below(0, &sig));
}
#else
static void test_stack_guard(void)
{
	printf("skip stack guard: AddressSanitizer handles the child's SIGSEGV itself\n");
}
#endif

int main(void)
{
	test_argv();
	test_env();
	test_user();
	test_subid();
	test_caps();
	test_names();
	test_stack_guard();
	T_DONE();
}
