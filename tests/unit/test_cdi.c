/* Unit tests: the CDI edits plan (format, parse, normalize), CDI names, --device /dev/X, --gpus, the hooks' state
   JSON and hook runs (cdi/plan.c, cdi/hooks.c). */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include "../../cdi/cdi.h"
#include "t.h"

static struct cdi_plan sample(void)
{
	struct cdi_plan p = {0};
	strv_push(&p.env, "A=1");
	strv_push(&p.env, "TAB=x\ty\\z");
	struct cdi_dev d = {"/dev/host 0", "/dev/ctr\nx", 'c', 195, 0, 0666, 0, 44, "rw"};
	cdi_plan_add_dev(&p, &d);
	struct cdi_mount m = {"/usr/lib/x", "/opt/x", NULL, {0}};
	strv_push(&m.opts, "ro");
	strv_push(&m.opts, "rbind");
	cdi_plan_add_mount(&p, &m);
	strv_free(&m.opts);
	p.gids = xcalloc(1, sizeof *p.gids);
	p.gids[p.ngids++] = 44;
	struct cdi_hook h = {CDI_CREATE_CONTAINER, "/usr/bin/nvidia-cdi-hook", {0}, {0}, 7};
	strv_push(&h.args, "nvidia-cdi-hook");
	strv_push(&h.args, "create-symlinks");
	strv_push(&h.args, "--link");
	strv_push(&h.args, "libcuda.so.1::/usr/lib/libcuda.so");
	strv_push(&h.env, "K=v w");
	cdi_plan_add_hook(&p, &h);
	strv_free(&h.args);
	strv_free(&h.env);
	return p;
}

static void test_roundtrip(void)
{
	struct cdi_plan p = sample(), q;
	struct qerr err = {0};
	char *text = cdi_plan_format(&p);
	T_OK("plan: format starts with the magic", !strncmp(text, CDI_PLAN_MAGIC "\n", strlen(CDI_PLAN_MAGIC) + 1));
	T_OK("plan: parse", cdi_plan_parse(text, &q, &err) == 0);
	T_STREQ("plan: env escaped", "TAB=x\ty\\z", q.env.n == 2 ? q.env.v[1] : NULL);
	T_OK("plan: one dev", q.ndevs == 1);
	T_STREQ("plan: dev host with space", "/dev/host 0", q.ndevs ? q.devs[0].host : NULL);
	T_STREQ("plan: dev ctr with newline", "/dev/ctr\nx", q.ndevs ? q.devs[0].ctr : NULL);
	T_OK("plan: dev numbers", q.ndevs && q.devs[0].major == 195 && q.devs[0].minor == 0 && q.devs[0].mode == 0666 &&
	                              q.devs[0].uid == 0 && q.devs[0].gid == 44 && q.devs[0].type == 'c');
	T_STREQ("plan: dev perms", "rw", q.ndevs ? q.devs[0].perms : NULL);
	T_OK("plan: mount opts", q.nmounts == 1 && q.mounts[0].opts.n == 2 && !strcmp(q.mounts[0].opts.v[1], "rbind"));
	T_OK("plan: gids", q.ngids == 1 && q.gids[0] == 44);
	T_OK("plan: hook", q.nhooks == 1 && q.hooks[0].stage == CDI_CREATE_CONTAINER && q.hooks[0].timeout == 7 &&
	                       q.hooks[0].args.n == 4 && q.hooks[0].env.n == 1);
	T_STREQ("plan: hook arg", "libcuda.so.1::/usr/lib/libcuda.so", q.nhooks ? q.hooks[0].args.v[3] : NULL);
	char *again = cdi_plan_format(&q);
	char *text2 = cdi_plan_format(&p);
	T_STREQ("plan: format(parse(x)) == x", text2, again);
	free(text);
	free(text2);
	free(again);
	cdi_plan_free(&p);
	cdi_plan_free(&q);
}

static void parse_bad(const char *name, const char *text, const char *want)
{
	struct cdi_plan p;
	struct qerr err = {0};
	char *t = xstrdup(text);
	int rc = cdi_plan_parse(t, &p, &err);
	T_OK(name, rc < 0 && strstr(err.msg, want));
	if (rc < 0 && !strstr(err.msg, want))
		printf("  got: %s\n", err.msg);
	free(t);
}

static void test_parse_errors(void)
{
	parse_bad("plan: no magic", "env A=1\nend\n", "not a plan");
	parse_bad("plan: truncated", CDI_PLAN_MAGIC "\nenv A=1\n", "truncated");
	parse_bad("plan: unknown key", CDI_PLAN_MAGIC "\nfoo bar\nend\n", "line 2: malformed \"foo\"");
	parse_bad("plan: relative device path", CDI_PLAN_MAGIC "\ndev dev/x\t/dev/x\t\t-1\t-1\t-1\t\t-1\t-1\nend\n",
	          "malformed \"dev\"");
	parse_bad("plan: bad perms", CDI_PLAN_MAGIC "\ndev /dev/x\t/dev/x\t\t-1\t-1\t-1\trwx\t-1\t-1\nend\n",
	          "malformed");
	parse_bad("plan: bad stage", CDI_PLAN_MAGIC "\nhook prestop\t/bin/x\t0\nend\n", "malformed \"hook\"");
	parse_bad("plan: hook-arg without hook", CDI_PLAN_MAGIC "\nhook-arg x\nend\n", "malformed");
	parse_bad("plan: env without =", CDI_PLAN_MAGIC "\nenv A\nend\n", "malformed");
	parse_bad("plan: gid out of range", CDI_PLAN_MAGIC "\ngid 4294967295\nend\n", "malformed");
}

static void test_normalize(void)
{
	struct cdi_plan p = {0};
	const char *mounts[][2] = {{"/h1", "/a/b/c"}, {"/h2", "/a"}, {"/h3", "/a/b"}, {"/h4", "/a//"}, {"/h5", "/z"}};
	for (size_t i = 0; i < 5; i++) {
		struct cdi_mount m = {(char *)mounts[i][0], (char *)mounts[i][1], NULL, {0}};
		cdi_plan_add_mount(&p, &m);
	}
	struct cdi_dev d1 = {"/dev/null", "/dev/gpu", 0, -1, -1, -1, -1, -1, ""};
	struct cdi_dev d2 = {"/dev/zero", "/dev//gpu", 0, -1, -1, -1, -1, -1, ""};
	cdi_plan_add_dev(&p, &d1);
	cdi_plan_add_dev(&p, &d2);
	strv_push(&p.env, "A=1");
	strv_push(&p.env, "B=1");
	strv_push(&p.env, "A=2");
	cdi_plan_normalize(&p);
	T_OK("normalize: same path replaced (later wins)", p.nmounts == 4);
	T_OK("normalize: by depth, stable", p.nmounts == 4 && !strcmp(p.mounts[0].host, "/h4") &&
	                                        !strcmp(p.mounts[1].host, "/h5") && !strcmp(p.mounts[2].host, "/h3") &&
	                                        !strcmp(p.mounts[3].host, "/h1"));
	T_OK("normalize: device at the same path: later wins", p.ndevs == 1 && !strcmp(p.devs[0].host, "/dev/zero"));
	T_OK("normalize: env one per key, the later",
	     p.env.n == 2 && !strcmp(p.env.v[0], "B=1") && !strcmp(p.env.v[1], "A=2"));
	cdi_plan_free(&p);
}

static void test_names(void)
{
	struct qerr err = {0};
	char *kind = NULL, *name = NULL;
	T_OK("name: nvidia.com/gpu=0", cdi_name_parse("nvidia.com/gpu=0", &kind, &name, &err) == 0);
	T_STREQ("name: kind", "nvidia.com/gpu", kind);
	T_STREQ("name: name", "0", name);
	free(kind);
	free(name);
	T_OK("name: uuid-like", cdi_name_parse("nvidia.com/gpu=GPU-4a3b:1", &kind, &name, &err) == 0);
	free(kind);
	free(name);
	const char *bad[] = {"nvidia.com/gpu",    "nvidia.com=0",      "/gpu=0",
	                     "nvidia.com/=0",     "nvidia.com/gpu=",   "nvidia.com/gpu=-x",
	                     "nvidia.com/g pu=0", "nvi dia.com/gpu=0", NULL};
	for (const char **b = bad; *b; b++) {
		char n[80];
		snprintf(n, sizeof n, "name: invalid %s", *b);
		T_OK(n, cdi_name_parse(*b, &kind, &name, &err) < 0 && strstr(err.msg, "invalid CDI device name"));
	}
	T_OK("name: looks qualified", cdi_name_looks_qualified("a.com/b=c") && !cdi_name_looks_qualified("/dev/x"));
}

static void test_plain(void)
{
	struct qerr err = {0};
	struct cdi_dev d;
	T_OK("plain: /dev/zero", cdi_plain_device_parse("/dev/zero", &d, &err) == 0 && !strcmp(d.ctr, "/dev/zero") &&
	                             !strcmp(d.perms, "rwm"));
	free(d.host), free(d.ctr);
	T_OK("plain: host:ctr", cdi_plain_device_parse("/dev/zero:/dev/z", &d, &err) == 0 &&
	                            !strcmp(d.host, "/dev/zero") && !strcmp(d.ctr, "/dev/z"));
	free(d.host), free(d.ctr);
	T_OK("plain: host:perms", cdi_plain_device_parse("/dev/zero:r", &d, &err) == 0 && !strcmp(d.ctr, "/dev/zero") &&
	                              !strcmp(d.perms, "r"));
	free(d.host), free(d.ctr);
	T_OK("plain: host:ctr:perms",
	     cdi_plain_device_parse("/dev/zero:/dev/z:rw", &d, &err) == 0 && !strcmp(d.perms, "rw"));
	free(d.host), free(d.ctr);
	T_OK("plain: bad perms",
	     cdi_plain_device_parse("/dev/zero:/dev/z:rwx", &d, &err) < 0 && strstr(err.msg, "invalid permissions"));
	T_OK("plain: relative ctr",
	     cdi_plain_device_parse("/dev/zero:z:rw", &d, &err) < 0 && strstr(err.msg, "absolute"));
	T_OK("plain: too many parts", cdi_plain_device_parse("/dev/a:/dev/b:/dev/c", &d, &err) < 0);
}

static void gpus(const char *v, const char *want)
{
	struct strv n = {0};
	struct qerr err = {0};
	char got[1100] = "";
	if (cdi_gpus_names(v, &n, &err) < 0)
		snprintf(got, sizeof got, "error: %s", err.msg);
	for (size_t i = 0; i < n.n; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", n.v[i]);
	char name[80];
	snprintf(name, sizeof name, "--gpus %s", v);
	if (!strncmp(want, "error: ", 7)) {
		T_OK(name, strstr(got, want + 7) != NULL);
	} else {
		T_STREQ(name, want, got);
	}
	strv_free(&n);
}

static void test_gpus(void)
{
	gpus("all", "nvidia.com/gpu=all");
	gpus("count=all", "nvidia.com/gpu=all");
	gpus("-1", "nvidia.com/gpu=all");
	gpus("2", "nvidia.com/gpu=0 nvidia.com/gpu=1");
	gpus("count=1", "nvidia.com/gpu=0");
	gpus("device=1,3", "nvidia.com/gpu=1 nvidia.com/gpu=3");
	gpus("\"device=GPU-abc,2\"", "nvidia.com/gpu=GPU-abc nvidia.com/gpu=2");
	gpus("device=", "error: no device given");
	gpus("0", "error: expected all, a count");
	gpus("many", "error: expected all, a count");
	gpus("device=a b", "error: invalid device id");
}

static void test_state(void)
{
	char buf[256];
	T_OK("state: json", cdi_state_json(buf, sizeof buf, "abc", "creating", 42, "/b\"x") == 0);
	T_STREQ("state: text",
	        "{\"ociVersion\":\"1.0.2\",\"id\":\"abc\",\"status\":\"creating\",\"pid\":42,\"bundle\":\"/b\\\"x\","
	        "\"annotations\":{}}",
	        buf);
	char small[40];
	T_OK("state: too small is an error", cdi_state_json(small, sizeof small, "abc", "creating", 42, "/b") < 0);
}

/* Real hook runs: the state arrives on stdin, the exit status and the timeout are reported with the hook's name. */
static void test_hooks(void)
{
	char dir[] = "/tmp/qimg-test-cdi-XXXXXX";
	if (!mkdtemp(dir)) {
		T_OK("hooks: mkdtemp", 0);
		return;
	}
	char out[128], cmd[512];
	snprintf(out, sizeof out, "%s/state", dir);
	struct cdi_plan p = {0};
	struct cdi_hook h = {CDI_POSTSTART, "/bin/sh", {0}, {0}, 5};
	strv_push(&h.args, "sh");
	strv_push(&h.args, "-c");
	snprintf(cmd, sizeof cmd, "cat > %s; echo \" $HOOKENV\" >> %s", out, out);
	strv_push(&h.args, cmd);
	strv_push(&h.env, "HOOKENV=yes");
	cdi_plan_add_hook(&p, &h);
	strv_free(&h.args);
	struct cdi_hook f = {CDI_POSTSTOP, "/bin/sh", {0}, {0}, 0};
	strv_push(&f.args, "sh");
	strv_push(&f.args, "-c");
	strv_push(&f.args, "exit 4");
	cdi_plan_add_hook(&p, &f);
	strv_free(&f.args);
	struct cdi_hook s = {CDI_CREATE_RUNTIME, "/bin/sleep", {0}, {0}, 1};
	strv_push(&s.args, "sleep");
	strv_push(&s.args, "20");
	cdi_plan_add_hook(&p, &s);
	strv_free(&s.args);
	strv_free(&h.env);
	struct qerr err = {0};
	T_OK("hooks: poststart runs", cdi_hooks_run(&p, CDI_POSTSTART, "{\"x\":1}", false, &err) == 0);
	char *got = read_file_at(AT_FDCWD, out, 4096, NULL, &err);
	T_STREQ("hooks: state on stdin, own env", "{\"x\":1} yes\n", got);
	free(got);
	T_OK("hooks: failing hook names itself", cdi_hooks_run(&p, CDI_POSTSTOP, "{}", false, &err) < 0 &&
	                                             strstr(err.msg, "poststop hook /bin/sh: exit status 4"));
	T_OK("hooks: timeout kills", cdi_hooks_run(&p, CDI_CREATE_RUNTIME, "{}", false, &err) < 0 &&
	                                 strstr(err.msg, "createRuntime hook /bin/sleep: timed out after 1 s"));
	T_OK("hooks: no hooks of a stage", cdi_hooks_run(&p, CDI_START_CONTAINER, "{}", false, &err) == 0);
	unlink(out);
	rmdir(dir);
	cdi_plan_free(&p);
}

int main(void)
{
	test_roundtrip();
	test_parse_errors();
	test_normalize();
	test_names();
	test_plain();
	test_gpus();
	test_state();
	test_hooks();
	T_DONE();
}
