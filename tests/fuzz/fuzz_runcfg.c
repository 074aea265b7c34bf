/* Fuzz target: the runner's text parsers (run/config.c): an --env-file, and -u USER[:GROUP] against the
   image's /etc/passwd and /etc/group. Input: "USERSPEC\0PASSWD\0GROUP\0ENVFILE" (missing parts = absent). */
#include "../../run/run_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size;
	char *part[4] = {NULL, NULL, NULL, NULL};
	struct qerr err = {0};
	if (size > (1 << 20))
		return 0;
	for (int i = 0; i < 4 && left > 0; i++)
		part[i] = fuzz_split(rest, left, 0, &rest, &left);
	struct run_user u;
	if (run_user_resolve(part[0], part[1], part[2], &u, &err) == 0) {
		if (!u.home || u.ngroups == 0 || u.groups[0] != u.gid || u.uid == (uid_t)-1 || u.gid == (gid_t)-1)
			abort();
		run_user_free(&u);
	} else if (!err.msg[0]) {
		abort();
	}
	struct strv env = {0};
	if (part[3] && run_env_text_parse(part[3], "fuzz.env", &env, &err) == 0) {
		for (size_t i = 0; i < env.n; i++)
			if (!strchr(env.v[i], '=') || env.v[i][0] == '=' || strchr(env.v[i], '\n'))
				abort();
	}
	strv_free(&env);
	for (int i = 0; i < 4; i++)
		free(part[i]);
	return 0;
}
