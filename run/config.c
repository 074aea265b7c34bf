/* The image config and the run flags turned into what exec needs: argv, environment, user and groups (docker's
   rules; /etc/passwd and /etc/group parsed directly, no NSS). */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* ---- environment ---- */

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static ssize_t env_find(const struct strv *env, const char *key, size_t klen)
{
	for (size_t i = 0; i < env->n; i++)
		if (key_len(env->v[i]) == klen && !strncmp(env->v[i], key, klen))
			return (ssize_t)i;
	return -1;
}

void run_env_set(struct strv *env, const char *kv)
{
	ssize_t i = env_find(env, kv, key_len(kv));
	if (i < 0) {
		strv_push(env, kv);
		return;
	}
	free(env->v[i]);
	env->v[i] = xstrdup(kv);
}

const char *run_env_get(const struct strv *env, const char *key)
{
	ssize_t i = env_find(env, key, strlen(key));
	if (i < 0)
		return NULL;
	const char *eq = strchr(env->v[i], '=');
	return eq ? eq + 1 : "";
}

void run_env_default(struct strv *env, const char *key, const char *val)
{
	if (env_find(env, key, strlen(key)) >= 0)
		return;
	strv_push_take(env, xasprintf("%s=%s", key, val));
}

void run_env_build(const struct image_spec *spec, const struct strv *user_env, const char *hostname, bool tty,
                   struct strv *out)
{
	for (size_t i = 0; i < spec->env.n; i++)
		if (strchr(spec->env.v[i], '='))
			run_env_set(out, spec->env.v[i]);
	for (size_t i = 0; user_env && i < user_env->n; i++)
		if (strchr(user_env->v[i], '='))
			run_env_set(out, user_env->v[i]);
	run_env_default(out, "PATH", RUN_DEFAULT_PATH);
	run_env_default(out, "HOSTNAME", hostname);
	if (tty)
		run_env_default(out, "TERM", "xterm");
}

int run_env_text_parse(const char *text, const char *what, struct strv *out, struct qerr *err)
{
	autofree char *copy = xstrdup(text);
	char *p = copy;
	if (!strncmp(p, "\xef\xbb\xbf", 3)) /* UTF-8 byte order mark */
		p += 3;
	int lineno = 0;
	for (char *save = NULL, *line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		line += strspn(line, " \t\r\v\f");
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (!*line || *line == '#')
			continue;
		size_t klen = key_len(line);
		if (klen == 0 || strcspn(line, " \t") < klen)
			return qerr_set(err, "%s:%d: invalid variable name in \"%s\"", what, lineno, line);
		if (line[klen] == '=') {
			strv_push(out, line);
			continue;
		}
		const char *v = getenv(line);
		if (v)
			strv_push_take(out, xasprintf("%s=%s", line, v));
	}
	return 0;
}

int run_env_file_read(const char *path, struct strv *out, struct qerr *err)
{
	autofree char *text = read_file_at(AT_FDCWD, path, 1u << 20, NULL, err);
	if (!text)
		return qerr_wrap(err, "--env-file: ");
	return run_env_text_parse(text, path, out, err);
}

/* ---- argv ---- */

int run_argv_build(const struct image_spec *spec, const char *entrypoint, char *const *args, size_t nargs,
                   struct strv *out, struct qerr *err)
{
	if (entrypoint) {
		/* --entrypoint replaces the image's Entrypoint and drops its Cmd; "" means none. */
		if (*entrypoint)
			strv_push(out, entrypoint);
	} else {
		for (size_t i = 0; i < spec->entrypoint.n; i++)
			strv_push(out, spec->entrypoint.v[i]);
	}
	if (nargs > 0) {
		for (size_t i = 0; i < nargs; i++)
			strv_push(out, args[i]);
	} else if (!entrypoint) {
		for (size_t i = 0; i < spec->cmd.n; i++)
			strv_push(out, spec->cmd.v[i]);
	}
	if (out->n == 0)
		return qerr_set(err, "no command specified (the image has neither Entrypoint nor Cmd)");
	return 0;
}

/* ---- user and groups ---- */

/* Find a passwd entry by name or uid: fills uid, gid, name, home. */
static bool passwd_lookup(const char *passwd, const char *name, const uint32_t *uid, struct run_user *u)
{
	uint32_t id, gid;
	if (!passwd_text_find(passwd, name, uid, &id, &gid, &u->name, &u->home))
		return false;
	u->uid = id;
	u->gid = gid;
	return true;
}

static bool group_lookup(const char *group, const char *name, uint32_t *gid)
{
	if (!group)
		return false;
	autofree char *copy = xstrdup(group);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		if (colon_split(line, f, 4) >= 3 && !strcmp(f[0], name) && id_parse(f[2], gid))
			return true;
	}
	return false;
}

static void add_group(struct run_user *u, gid_t g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	u->groups = xrealloc(u->groups, (u->ngroups + 1) * sizeof *u->groups);
	u->groups[u->ngroups++] = g;
}

/* Supplementary groups: every group listing the user as a member (what initgroups does with files). */
static void member_groups(const char *group, struct run_user *u)
{
	if (!group || !u->name)
		return;
	autofree char *copy = xstrdup(group);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		uint32_t gid;
		if (colon_split(line, f, 4) < 4 || !id_parse(f[2], &gid))
			continue;
		for (char *msave = NULL, *m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave))
			if (!strcmp(m, u->name))
				add_group(u, gid);
	}
}

int run_user_resolve(const char *spec, const char *passwd, const char *group, struct run_user *u, struct qerr *err)
{
	memset(u, 0, sizeof *u);
	autofree char *copy = xstrdup(spec && *spec ? spec : "0");
	char *grp = strchr(copy, ':');
	if (grp)
		*grp++ = '\0';
	uint32_t id;
	if (id_parse(copy, &id)) {
		if (!passwd_lookup(passwd, NULL, &id, u)) {
			/* An unknown numeric uid runs with gid 0 and HOME=/ (docker). */
			u->uid = id;
			u->gid = 0;
			u->home = xstrdup("/");
		}
	} else if (!*copy || !passwd_lookup(passwd, copy, NULL, u)) {
		return qerr_set(err, "unable to find user %s: no matching entries in passwd file", copy);
	}
	if (grp) {
		uint32_t gid;
		if (!id_parse(grp, &gid) && !group_lookup(group, grp, &gid)) {
			run_user_free(u);
			qerr_set(err, "unable to find group %s: no matching entries in group file", grp);
			return -1;
		}
		u->gid = gid;
	}
	add_group(u, u->gid);
	member_groups(group, u);
	return 0;
}

void run_user_free(struct run_user *u)
{
	free(u->groups);
	free(u->name);
	free(u->home);
	memset(u, 0, sizeof *u);
}
