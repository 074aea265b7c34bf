/* Unit tests: image reference parsing and normalisation (pull/ref.c). */
#include "../../pull/pull.h"
#include "t.h"

static const char D[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void good(const char *in, const char *want_str, const char *want_endpoint)
{
	struct image_ref r;
	struct qerr err = {0};
	char name[300];
	snprintf(name, sizeof name, "parse %s", in);
	if (ref_parse(in, &r, &err) < 0) {
		printf("FAIL %s: %s\n", name, err.msg);
		t_failures++;
		return;
	}
	char *s = ref_string(&r);
	T_STREQ(name, want_str, s);
	snprintf(name, sizeof name, "endpoint %s", in);
	T_STREQ(name, want_endpoint, ref_endpoint(&r));
	free(s);
	ref_free(&r);
}

static void bad(const char *in, const char *want_substr)
{
	struct image_ref r;
	struct qerr err = {0};
	char name[300];
	snprintf(name, sizeof name, "reject \"%s\"", in);
	int rc = ref_parse(in, &r, &err);
	T_OK(name, rc < 0 && strstr(err.msg, want_substr) != NULL);
	if (rc == 0)
		ref_free(&r);
}

int main(void)
{
	char buf[512];
	good("ubuntu", "docker.io/library/ubuntu:latest", "registry-1.docker.io");
	good("ubuntu:20.04", "docker.io/library/ubuntu:20.04", "registry-1.docker.io");
	good("library/ubuntu", "docker.io/library/ubuntu:latest", "registry-1.docker.io");
	good("docker.io/library/ubuntu:20.04", "docker.io/library/ubuntu:20.04", "registry-1.docker.io");
	good("index.docker.io/ubuntu", "docker.io/library/ubuntu:latest", "registry-1.docker.io");
	good("docker.io/ubuntu", "docker.io/library/ubuntu:latest", "registry-1.docker.io");
	good("someuser/app:v1", "docker.io/someuser/app:v1", "registry-1.docker.io");
	good("ghcr.io/org/img:tag", "ghcr.io/org/img:tag", "ghcr.io");
	good("host:5000/a/b/c:tag", "host:5000/a/b/c:tag", "host:5000");
	good("localhost/img", "localhost/img:latest", "localhost");
	good("127.0.0.1:5000/x_y.z__w-v---u:1.0-rc_1", "127.0.0.1:5000/x_y.z__w-v---u:1.0-rc_1", "127.0.0.1:5000");
	snprintf(buf, sizeof buf, "ubuntu@%s", D);
	char want[512];
	snprintf(want, sizeof want, "docker.io/library/ubuntu@%s", D);
	good(buf, want, "registry-1.docker.io");
	snprintf(buf, sizeof buf, "reg.example:443/a/b:t@%s", D);
	snprintf(want, sizeof want, "reg.example:443/a/b:t@%s", D);
	good(buf, want, "reg.example:443");

	bad("", "empty");
	bad("Ubuntu", "lowercase");
	bad("ubuntu:", "invalid tag");
	bad("ubuntu:-x", "invalid tag");
	bad("ubuntu@sha256:abc", "digest");
	bad("ubuntu@md5:0123", "digest");
	bad("a//b", "invalid repository");
	bad("a/../b", "invalid repository");
	bad("-a", "invalid repository");
	bad("a b", "whitespace");
	bad("host:99999999/a", "invalid registry host");
	bad("ex ample.com/a", "whitespace");
	bad("a/b_", "invalid repository");
	bad("a/b___c", "invalid repository");
	memset(buf, 'a', 300);
	buf[300] = '\0';
	bad(buf, "longer than 255");

	/* Store keys derive from the parsed ref: tag, or digest when given. */
	struct image_ref r;
	struct qerr err;
	snprintf(buf, sizeof buf, "busybox:1@%s", D);
	T_OK("parse tag+digest", ref_parse(buf, &r, &err) == 0);
	T_STREQ("key prefers digest", D, ref_key(&r));
	T_STREQ("tag kept", "1", r.tag);
	ref_free(&r);
	T_DONE();
}
