/* Unit tests: the CDI resolver (cdi/resolve.c, cdi/yaml.c): JSON and YAML specs, cdiVersion rules, unknown fields,
   two spec directories, =all, conflicts and unknown devices, each error naming its file and field. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../cdi/cdi.h"
#include "t.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0755);
	*slash = '/';
	struct qerr err;
	if (write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0644, false, &err) < 0)
		printf("FAIL write %s: %s\n", path, err.msg);
}

static void drop(const char *rel)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	unlink(path);
}

/* Resolve names (space separated) with dirs (relative to root, colon separated); returns the plan text or
   "error: MSG". Caller frees. */
static char *resolve(const char *dirs, const char *names)
{
	char d[512] = "";
	char *copy = xstrdup(dirs);
	for (char *s = NULL, *t = strtok_r(copy, ":", &s); t; t = strtok_r(NULL, ":", &s))
		snprintf(d + strlen(d), sizeof d - strlen(d), "%s%s/%s", *d ? ":" : "", root, t);
	free(copy);
	struct strv n = {0};
	copy = xstrdup(names);
	for (char *s = NULL, *t = strtok_r(copy, " ", &s); t; t = strtok_r(NULL, " ", &s))
		strv_push(&n, t);
	free(copy);
	struct cdi_plan p;
	struct qerr err = {0};
	char *out;
	if (cdi_resolve(d, n.v, n.n, &p, &err) < 0) {
		out = xasprintf("error: %s (exit %d)", err.msg, err.exit_status);
	} else {
		out = cdi_plan_format(&p);
		cdi_plan_free(&p);
	}
	strv_free(&n);
	return out;
}

static void has(const char *name, const char *out, const char *needle)
{
	T_OK(name, strstr(out, needle) != NULL);
	if (!strstr(out, needle))
		printf("  want \"%s\" in:\n%s\n", needle, out);
}

static void lacks(const char *name, const char *out, const char *needle)
{
	T_OK(name, strstr(out, needle) == NULL);
}

static const char YAML[] = "cdiVersion: \"0.6.0\"\n"
                           "kind: vendor.example/gpu\n"
                           "annotations: {a: b}\n"
                           "containerEdits:\n"
                           "  env: [SHARED=1]\n"
                           "  hooks:\n"
                           "  - hookName: createContainer\n"
                           "    path: /usr/bin/hook\n"
                           "    args: [hook, create-symlinks, --link, \"libcuda.so.1::/usr/lib/libcuda.so\"]\n"
                           "    timeout: 5\n"
                           "devices:\n"
                           "- name: \"0\"\n"
                           "  containerEdits:\n"
                           "    env: [GPU=0]\n"
                           "    deviceNodes:\n"
                           "    - path: /dev/vgpu0\n"
                           "      hostPath: /dev/null\n"
                           "      major: 1\n"
                           "      minor: 3\n"
                           "      fileMode: 0666\n"
                           "      permissions: rw\n"
                           "    mounts:\n"
                           "    - {hostPath: /usr/lib/v, containerPath: /usr/lib/v, options: [ro, rbind]}\n"
                           "- name: \"1\"\n"
                           "  containerEdits: {env: [GPU=1]}\n";

static void test_basic(void)
{
	put("a/v.yaml", YAML);
	char *out = resolve("a", "vendor.example/gpu=0");
	has("yaml: shared env first", out, "env SHARED=1\nenv GPU=0\n");
	has("yaml: device node", out, "dev /dev/null\t/dev/vgpu0\t\t1\t3\t438\trw\t-1\t-1\n");
	has("yaml: mount", out, "mount /usr/lib/v\t/usr/lib/v\t\tro,rbind\n");
	has("yaml: hook", out, "hook createContainer\t/usr/bin/hook\t5\nhook-arg hook\n");
	has("yaml: quoted arg", out, "hook-arg libcuda.so.1::/usr/lib/libcuda.so\n");
	free(out);
	out = resolve("a", "vendor.example/gpu=0 vendor.example/gpu=1");
	T_OK("two devices: the spec's shared edits once",
	     strstr(out, "SHARED") && !strstr(strstr(out, "SHARED") + 1, "SHARED"));
	has("two devices: both", out, "env GPU=0\n");
	has("two devices: both (2)", out, "env GPU=1\n");
	free(out);
	out = resolve("a", "vendor.example/gpu=all");
	has("=all without an all device: every device", out, "env SHARED=1\nenv GPU=0\n");
	has("=all: second device", out, "env GPU=1\n");
	free(out);
}

static void test_dirs(void)
{
	put("b/v.json", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"vendor.example/gpu\",\"devices\":["
	                "{\"name\":\"1\",\"containerEdits\":{\"env\":[\"GPU=1-from-b\"]}}]}");
	char *out = resolve("a:b", "vendor.example/gpu=1");
	has("later dir wins", out, "env GPU=1-from-b\n");
	lacks("later dir wins: the earlier's shared edits are not applied", out, "SHARED");
	free(out);
	out = resolve("b:a", "vendor.example/gpu=1");
	has("order of dirs decides", out, "env GPU=1\n");
	free(out);
	out = resolve("a:b", "vendor.example/gpu=all");
	has("=all: overridden device from the later dir", out, "GPU=1-from-b");
	has("=all: others from the earlier", out, "GPU=0");
	free(out);
	put("a/w.json", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"vendor.example/gpu\",\"devices\":["
	                "{\"name\":\"0\",\"containerEdits\":{}}]}");
	out = resolve("a", "vendor.example/gpu=0");
	has("same dir, two files: conflict names both", out, "vendor.example/gpu=0 is defined by both");
	has("conflict: files", out, "a/v.yaml and");
	free(out);
	drop("a/w.json");
	out = resolve("a:missing-dir", "vendor.example/gpu=1");
	has("a missing dir is empty", out, "env GPU=1\n");
	free(out);
}

static void test_errors(void)
{
	char *out = resolve("a:b", "vendor.example/gpu=9");
	has("unknown device", out, "unknown CDI device vendor.example/gpu=9; the specs in");
	has("unknown device lists offers once", out, "offer: vendor.example/gpu=0, vendor.example/gpu=1 (exit 125)");
	free(out);
	out = resolve("none", "x.example/y=0");
	has("no specs at all", out, "no CDI spec files in");
	free(out);
	struct {
		const char *name, *text, *want;
	} bad[] = {
	    {"unknown top field", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"v.example/c\",\"devices\":[],\"extra\":1}",
	     ": extra: unknown field"},
	    {"unknown nested field",
	     "{\"cdiVersion\":\"0.5.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
	     "{\"deviceNodes\":[{\"path\":\"/dev/x\",\"colour\":\"red\"}]}}]}",
	     ": devices[0].containerEdits.deviceNodes[0].colour: unknown field"},
	    {"version too new", "{\"cdiVersion\":\"1.2.0\",\"kind\":\"v.example/c\",\"devices\":[]}",
	     "cdiVersion: unsupported version"},
	    {"version older than a field",
	     "{\"cdiVersion\":\"0.4.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":"
	     "\"x\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/x\",\"hostPath\":"
	     "\"/dev/y\"}]}}]}",
	     "cdiVersion 0.4.0 is too old for the fields used (devices[0].containerEdits.deviceNodes[0].hostPath "
	     "needs 0.5.0)"},
	    {"mount type needs 0.4",
	     "{\"cdiVersion\":\"0.3.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":\"x\","
	     "\"containerEdits\":{\"mounts\":[{\"hostPath\":\"/a\",\"containerPath\":\"/b\","
	     "\"type\":\"bind\"}]}}]}",
	     "mounts[0].type needs 0.4.0"},
	    {"relative path",
	     "{\"cdiVersion\":\"0.5.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":\"x\","
	     "\"containerEdits\":{\"mounts\":[{\"hostPath\":\"/a\",\"containerPath\":\"b\"}]}}]}",
	     "mounts[0].containerPath: not an absolute path"},
	    {"bad hook stage",
	     "{\"cdiVersion\":\"0.5.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":\"x\","
	     "\"containerEdits\":{\"hooks\":[{\"hookName\":\"prestop\",\"path\":\"/x\"}]}}]}",
	     "hooks[0].hookName: not an OCI hook stage"},
	    {"netDevices unsupported",
	     "{\"cdiVersion\":\"1.1.0\",\"kind\":\"v.example/c\",\"devices\":[{\"name\":\"x\","
	     "\"containerEdits\":{\"netDevices\":[]}}]}",
	     "netDevices: not supported by qimg"},
	    {"broken json", "{\"cdiVersion\":", "line 1:"},
	    {"no devices", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"v.example/c\"}", "devices: missing"},
	    {"bad kind", "{\"cdiVersion\":\"0.5.0\",\"kind\":\"nokind\",\"devices\":[]}", "kind: not VENDOR/CLASS"},
	    {"duplicate key", "{\"cdiVersion\":\"0.5.0\",\"cdiVersion\":\"0.5.0\"}", "line 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put("c/bad.json", bad[i].text);
		out = resolve("a:c", "vendor.example/gpu=0");
		char name[96];
		snprintf(name, sizeof name, "broken spec: %s (names the file)", bad[i].name);
		has(name, out, "CDI spec ");
		has(name, out, "/c/bad.json");
		snprintf(name, sizeof name, "broken spec: %s", bad[i].name);
		has(name, out, bad[i].want);
		free(out);
	}
	drop("c/bad.json");
	put("c/bad.yaml", "cdiVersion: 0.6.0\nkind: v.example/c\ndevices:\n- name: x\n  containerEdits:\n"
	                  "    additionalGids: [44]\n");
	out = resolve("c", "v.example/c=x");
	has("yaml: version older than additionalGids", out, "containerEdits.additionalGids needs 0.7.0");
	free(out);
	put("c/bad.yaml", "cdiVersion: 0.7.0\nkind: v.example/c\ndevices:\n- name: x\n  containerEdits:\n"
	                  "    env: [A=1\n");
	out = resolve("c", "v.example/c=x");
	has("yaml: syntax error with line", out, "/c/bad.yaml: line ");
	free(out);
	put("c/bad.yaml", "cdiVersion: 0.7.0\nkind: v.example/c\ndevices:\n- name: x\n  containerEdits:\n"
	                  "    additionalGids: [44, 0]\n    env: [\"B=2\"]\n");
	out = resolve("c", "v.example/c=x");
	has("yaml: gids (0 ignored)", out, "gid 44\nend\n");
	free(out);
	drop("c/bad.yaml");
	put("c/ignored.txt", "not a spec");
	put("c/.hidden.json", "not a spec");
	out = resolve("c", "v.example/c=x");
	has("only *.json and *.yaml are read", out, "no CDI spec files");
	free(out);
}

int main(void)
{
	snprintf(root, sizeof root, "/tmp/qimg-test-hcdi-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	test_basic();
	test_dirs();
	test_errors();
	struct qerr err;
	if (rm_rf_at(AT_FDCWD, root, &err) < 0)
		printf("FAIL cleanup %s: %s\n", root, err.msg);
	T_DONE();
}
