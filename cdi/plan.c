/* The CDI edits plan as a line file ("key field<TAB>field...", fields escaped as in the run spec), CDI names,
   --device /dev/X and docker's --gpus. Plain C: qimg reads plans, qimg-pull writes them. */
#include "cdi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_FIELDS_MAX 12

static const char *const stage_names[CDI_NSTAGES] = {"createRuntime", "createContainer", "startContainer", "poststart",
                                                     "poststop"};

const char *cdi_stage_name(enum cdi_stage s)
{
	return s < CDI_NSTAGES ? stage_names[s] : "?";
}

int cdi_stage_parse(const char *name, enum cdi_stage *out)
{
	for (int i = 0; i < CDI_NSTAGES; i++)
		if (!strcmp(name, stage_names[i])) {
			*out = (enum cdi_stage)i;
			return 0;
		}
	return -1;
}

/* ---- writing ---- */

static void put_fields(struct buf *b, const char *key, const char *const *f, size_t n)
{
	buf_printf(b, "%s ", key);
	for (size_t i = 0; i < n; i++) {
		autofree char *e = line_escape(f[i] ? f[i] : "");
		buf_printf(b, "%s%s", i ? "\t" : "", e);
	}
	buf_append(b, "\n", 1);
}

static char *num(int64_t v)
{
	return xasprintf("%lld", (long long)v);
}

static char *opts_join(const struct strv *o)
{
	struct buf b = {0};
	buf_append(&b, "", 1);
	b.len = 0;
	for (size_t i = 0; i < o->n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", o->v[i]);
	return b.p;
}

char *cdi_plan_format(const struct cdi_plan *p)
{
	struct buf b = {0};
	buf_printf(&b, "%s\n", CDI_PLAN_MAGIC);
	for (size_t i = 0; i < p->env.n; i++)
		put_fields(&b, "env", (const char *const *)&p->env.v[i], 1);
	for (size_t i = 0; i < p->ndevs; i++) {
		const struct cdi_dev *d = &p->devs[i];
		char type[2] = {d->type, 0};
		autofree char *ma = num(d->major), *mi = num(d->minor), *mo = num(d->mode), *u = num(d->uid),
		              *g = num(d->gid);
		const char *f[] = {d->host, d->ctr, type, ma, mi, mo, d->perms, u, g};
		put_fields(&b, "dev", f, sizeof f / sizeof f[0]);
	}
	for (size_t i = 0; i < p->nmounts; i++) {
		const struct cdi_mount *m = &p->mounts[i];
		autofree char *opts = opts_join(&m->opts);
		const char *f[] = {m->host, m->ctr, m->type ? m->type : "", opts};
		put_fields(&b, "mount", f, 4);
	}
	for (size_t i = 0; i < p->ngids; i++)
		buf_printf(&b, "gid %u\n", p->gids[i]);
	for (size_t i = 0; i < p->nhooks; i++) {
		const struct cdi_hook *h = &p->hooks[i];
		autofree char *t = num(h->timeout);
		const char *f[] = {cdi_stage_name(h->stage), h->path, t};
		put_fields(&b, "hook", f, 3);
		for (size_t j = 0; j < h->args.n; j++)
			put_fields(&b, "hook-arg", (const char *const *)&h->args.v[j], 1);
		for (size_t j = 0; j < h->env.n; j++)
			put_fields(&b, "hook-env", (const char *const *)&h->env.v[j], 1);
	}
	buf_printf(&b, "end\n");
	buf_append(&b, "", 1);
	return b.p;
}

/* ---- building ---- */

void cdi_plan_add_dev(struct cdi_plan *p, const struct cdi_dev *d)
{
	p->devs = xrealloc(p->devs, (p->ndevs + 1) * sizeof *p->devs);
	struct cdi_dev *n = &p->devs[p->ndevs++];
	*n = *d;
	n->host = xstrdup(d->host);
	n->ctr = xstrdup(d->ctr);
}

void cdi_plan_add_mount(struct cdi_plan *p, const struct cdi_mount *m)
{
	p->mounts = xrealloc(p->mounts, (p->nmounts + 1) * sizeof *p->mounts);
	struct cdi_mount *n = &p->mounts[p->nmounts++];
	*n = (struct cdi_mount){xstrdup(m->host), xstrdup(m->ctr), m->type ? xstrdup(m->type) : NULL, {0}};
	for (size_t i = 0; i < m->opts.n; i++)
		strv_push(&n->opts, m->opts.v[i]);
}

void cdi_plan_add_hook(struct cdi_plan *p, const struct cdi_hook *h)
{
	p->hooks = xrealloc(p->hooks, (p->nhooks + 1) * sizeof *p->hooks);
	struct cdi_hook *n = &p->hooks[p->nhooks++];
	*n = (struct cdi_hook){h->stage, xstrdup(h->path), {0}, {0}, h->timeout};
	for (size_t i = 0; i < h->args.n; i++)
		strv_push(&n->args, h->args.v[i]);
	for (size_t i = 0; i < h->env.n; i++)
		strv_push(&n->env, h->env.v[i]);
}

#define APPEND(to, from, arr, n)                                                                                       \
	do {                                                                                                           \
		if (!(from)->n)                                                                                        \
			break;                                                                                         \
		(to)->arr = xrealloc((to)->arr, ((to)->n + (from)->n + 1) * sizeof *(to)->arr);                        \
		memcpy((to)->arr + (to)->n, (from)->arr, (from)->n * sizeof *(to)->arr);                               \
		(to)->n += (from)->n;                                                                                  \
		free((from)->arr);                                                                                     \
		(from)->arr = NULL;                                                                                    \
		(from)->n = 0;                                                                                         \
	} while (0)

void cdi_plan_append(struct cdi_plan *to, struct cdi_plan *from)
{
	for (size_t i = 0; i < from->env.n; i++)
		strv_push_take(&to->env, from->env.v[i]);
	free(from->env.v);
	from->env = (struct strv){0};
	APPEND(to, from, devs, ndevs);
	APPEND(to, from, mounts, nmounts);
	APPEND(to, from, gids, ngids);
	APPEND(to, from, hooks, nhooks);
}

static void dev_free(struct cdi_dev *d)
{
	free(d->host);
	free(d->ctr);
}

static void mount_free(struct cdi_mount *m)
{
	free(m->host);
	free(m->ctr);
	free(m->type);
	strv_free(&m->opts);
}

void cdi_plan_free(struct cdi_plan *p)
{
	strv_free(&p->env);
	for (size_t i = 0; i < p->ndevs; i++)
		dev_free(&p->devs[i]);
	for (size_t i = 0; i < p->nmounts; i++)
		mount_free(&p->mounts[i]);
	for (size_t i = 0; i < p->nhooks; i++) {
		free(p->hooks[i].path);
		strv_free(&p->hooks[i].args);
		strv_free(&p->hooks[i].env);
	}
	free(p->devs);
	free(p->mounts);
	free(p->gids);
	free(p->hooks);
	memset(p, 0, sizeof *p);
}

bool cdi_plan_has_stage(const struct cdi_plan *p, enum cdi_stage s)
{
	for (size_t i = 0; p && i < p->nhooks; i++)
		if (p->hooks[i].stage == s)
			return true;
	return false;
}

/* "/a//b/" and "/a/b" are one path. */
static bool path_same(const char *a, const char *b)
{
	for (;;) {
		while (*a == '/' && (a[1] == '/' || !a[1]))
			a++;
		while (*b == '/' && (b[1] == '/' || !b[1]))
			b++;
		if (*a != *b)
			return false;
		if (!*a)
			return true;
		a++, b++;
	}
}

static size_t path_depth(const char *p)
{
	size_t n = 0;
	for (; *p; p++)
		if (*p != '/' && (p[1] == '/' || !p[1]))
			n++;
	return n;
}

static void env_dedupe(struct strv *env)
{
	size_t w = 0;
	for (size_t i = 0; i < env->n; i++) {
		size_t kl = strcspn(env->v[i], "=");
		bool later = false;
		for (size_t j = i + 1; j < env->n && !later; j++)
			later = !strncmp(env->v[j], env->v[i], kl) && env->v[j][kl] == env->v[i][kl] &&
			        (env->v[j][kl] == '=' || env->v[j][kl] == '\0');
		if (later)
			free(env->v[i]);
		else
			env->v[w++] = env->v[i];
	}
	env->n = w;
	if (env->v)
		env->v[w] = NULL;
}

void cdi_plan_normalize(struct cdi_plan *p)
{
	env_dedupe(&p->env);
	size_t w = 0;
	for (size_t i = 0; i < p->ndevs; i++) {
		bool later = false;
		for (size_t j = i + 1; j < p->ndevs && !later; j++)
			later = path_same(p->devs[i].ctr, p->devs[j].ctr);
		if (later)
			dev_free(&p->devs[i]);
		else
			p->devs[w++] = p->devs[i];
	}
	p->ndevs = w;
	w = 0;
	for (size_t i = 0; i < p->nmounts; i++) {
		bool later = false;
		for (size_t j = i + 1; j < p->nmounts && !later; j++)
			later = path_same(p->mounts[i].ctr, p->mounts[j].ctr);
		if (later)
			mount_free(&p->mounts[i]);
		else
			p->mounts[w++] = p->mounts[i];
	}
	p->nmounts = w;
	/* Stable insertion sort by depth: a mount never hides one below it that was meant to show. */
	for (size_t i = 1; i < p->nmounts; i++) {
		struct cdi_mount m = p->mounts[i];
		size_t d = path_depth(m.ctr), j = i;
		for (; j > 0 && path_depth(p->mounts[j - 1].ctr) > d; j--)
			p->mounts[j] = p->mounts[j - 1];
		p->mounts[j] = m;
	}
}

/* ---- parsing ---- */

static int split_fields(char *val, char **f, int max)
{
	int n = 0;
	for (char *s = val;; s++) {
		if (n == max)
			return -1;
		f[n++] = s;
		s += strcspn(s, "\t");
		if (!*s)
			break;
		*s = '\0';
	}
	for (int i = 0; i < n; i++)
		line_unescape(f[i]);
	return n;
}

static bool int_parse(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool path_ok(const char *s)
{
	return s[0] == '/';
}

static int parse_dev(char **f, int n, struct cdi_plan *p)
{
	struct cdi_dev d = {0};
	int64_t t[5];
	if (n != 9 || !path_ok(f[0]) || !path_ok(f[1]) || strlen(f[2]) > 1 || strlen(f[6]) > 3 ||
	    f[6][strspn(f[6], "rwm")])
		return -1;
	const int idx[5] = {3, 4, 5, 7, 8};
	for (int i = 0; i < 5; i++)
		if (!int_parse(f[idx[i]], -1, UINT32_MAX, &t[i]))
			return -1;
	d.host = f[0];
	d.ctr = f[1];
	d.type = f[2][0];
	d.major = t[0], d.minor = t[1], d.mode = t[2], d.uid = t[3], d.gid = t[4];
	snprintf(d.perms, sizeof d.perms, "%s", f[6]);
	cdi_plan_add_dev(p, &d);
	return 0;
}

static int parse_mount(char **f, int n, struct cdi_plan *p)
{
	if (n != 4 || !path_ok(f[0]) || !path_ok(f[1]))
		return -1;
	struct cdi_mount m = {f[0], f[1], *f[2] ? f[2] : NULL, {0}};
	for (char *save = NULL, *o = strtok_r(f[3], ",", &save); o; o = strtok_r(NULL, ",", &save))
		strv_push(&m.opts, o);
	cdi_plan_add_mount(p, &m);
	strv_free(&m.opts);
	return 0;
}

static int parse_hook(char **f, int n, struct cdi_plan *p)
{
	struct cdi_hook h = {0};
	int64_t t;
	if (n != 3 || cdi_stage_parse(f[0], &h.stage) < 0 || !path_ok(f[1]) || !int_parse(f[2], 0, INT32_MAX, &t))
		return -1;
	h.path = f[1];
	h.timeout = (int)t;
	cdi_plan_add_hook(p, &h);
	return 0;
}

static int parse_line(char *key, char *val, struct cdi_plan *p)
{
	char *f[PLAN_FIELDS_MAX];
	int n = split_fields(val, f, PLAN_FIELDS_MAX);
	int64_t g;
	if (n < 0)
		return -1;
	if (!strcmp(key, "env") && n == 1 && strchr(f[0], '='))
		strv_push(&p->env, f[0]);
	else if (!strcmp(key, "dev"))
		return parse_dev(f, n, p);
	else if (!strcmp(key, "mount"))
		return parse_mount(f, n, p);
	else if (!strcmp(key, "gid") && n == 1 && int_parse(f[0], 0, UINT32_MAX - 1, &g)) {
		p->gids = xrealloc(p->gids, (p->ngids + 1) * sizeof *p->gids);
		p->gids[p->ngids++] = (uint32_t)g;
	} else if (!strcmp(key, "hook"))
		return parse_hook(f, n, p);
	else if (!strcmp(key, "hook-arg") && n == 1 && p->nhooks)
		strv_push(&p->hooks[p->nhooks - 1].args, f[0]);
	else if (!strcmp(key, "hook-env") && n == 1 && p->nhooks)
		strv_push(&p->hooks[p->nhooks - 1].env, f[0]);
	else
		return -1;
	return 0;
}

int cdi_plan_parse(char *text, struct cdi_plan *p, struct qerr *err)
{
	memset(p, 0, sizeof *p);
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	if (!line || strcmp(line, CDI_PLAN_MAGIC) != 0)
		return qerr_set(err, "CDI plan: not a plan (first line \"%.40s\")", line ? line : "");
	for (int no = 2; (line = strtok_r(NULL, "\n", &save)) != NULL; no++) {
		if (!strcmp(line, "end"))
			return 0;
		char *val = strchr(line, ' ');
		if (val)
			*val++ = '\0';
		if (!val || parse_line(line, val, p) < 0) {
			cdi_plan_free(p);
			return qerr_set(err, "CDI plan: line %d: malformed \"%.60s\" record", no, line);
		}
	}
	cdi_plan_free(p);
	return qerr_set(err, "CDI plan: truncated (no end line)");
}

/* ---- names ---- */

static bool vendor_ok(const char *s, size_t n)
{
	/* vendor: a domain-like name; class: [A-Za-z0-9][A-Za-z0-9_.-]* (CDI's rules, dots from 0.6) */
	if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
			return false;
	return true;
}

static bool devname_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", s[i]))
			return false;
	return true;
}

bool cdi_name_looks_qualified(const char *s)
{
	return s[0] != '/' && strchr(s, '/') && strchr(s, '=');
}

int cdi_name_parse(const char *q, char **kind, char **name, struct qerr *err)
{
	const char *slash = strchr(q, '/'), *eq = strchr(q, '=');
	if (!slash || !eq || eq < slash || !vendor_ok(q, (size_t)(slash - q)) ||
	    !vendor_ok(slash + 1, (size_t)(eq - slash - 1)) || !devname_ok(eq + 1))
		return qerr_set(
		    err, "invalid CDI device name \"%s\" (expected VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=0)", q);
	*kind = xstrndup(q, (size_t)(eq - q));
	*name = xstrdup(eq + 1);
	return 0;
}

int cdi_plain_device_parse(const char *spec, struct cdi_dev *out, struct qerr *err)
{
	*out = (struct cdi_dev){.major = -1, .minor = -1, .mode = -1, .uid = -1, .gid = -1};
	autofree char *copy = xstrdup(spec);
	char *f[3] = {copy, NULL, NULL};
	int n = 1;
	for (char *c = copy; (c = strchr(c, ':')) != NULL && n < 3;) {
		*c++ = '\0';
		f[n++] = c;
	}
	if (strchr(f[n - 1], ':'))
		return qerr_set(err, "--device %s: expected /dev/HOST[:/dev/CONTAINER][:PERMISSIONS]", spec);
	const char *perms = "rwm";
	if (n >= 2 && f[n - 1][0] != '/') {
		perms = f[--n];
		if (!*perms || strlen(perms) > 3 || perms[strspn(perms, "rwm")])
			return qerr_set(err, "--device %s: invalid permissions \"%s\" (a subset of rwm)", spec, perms);
	}
	if (n > 2)
		return qerr_set(err, "--device %s: expected /dev/HOST[:/dev/CONTAINER][:PERMISSIONS]", spec);
	if (f[0][0] != '/' || (n == 2 && f[1][0] != '/'))
		return qerr_set(err, "--device %s: paths must be absolute", spec);
	out->host = xstrdup(f[0]);
	out->ctr = xstrdup(n == 2 ? f[1] : f[0]);
	snprintf(out->perms, sizeof out->perms, "%s", perms);
	return 0;
}

/* ---- --gpus ---- */

static void gpu_name(struct strv *names, const char *id, size_t n)
{
	strv_push_take(names, xasprintf("nvidia.com/gpu=%.*s", (int)n, id));
}

int cdi_gpus_names(const char *value, struct strv *names, struct qerr *err)
{
	autofree char *v = xstrdup(value);
	/* docker accepts the whole value quoted: --gpus '"device=0,1"' */
	size_t len = strlen(v);
	char *s = v;
	if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
		s[len - 1] = '\0';
		s++;
	}
	if (!strncmp(s, "count=", 6))
		s += 6;
	if (!strcmp(s, "all") || !strcmp(s, "-1")) {
		strv_push(names, "nvidia.com/gpu=all");
		return 0;
	}
	if (!strncmp(s, "device=", 7)) {
		s += 7;
		if (!*s)
			return qerr_set(err, "--gpus %s: no device given", value);
		for (char *save = NULL, *id = strtok_r(s, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
			if (!devname_ok(id))
				return qerr_set(err, "--gpus %s: invalid device id \"%s\"", value, id);
			gpu_name(names, id, strlen(id));
		}
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > 1024)
		return qerr_set(err, "--gpus %s: expected all, a count, or device=ID[,ID...]", value);
	/* A count: the first N GPUs by index, as docker's NVIDIA runtime picks them. */
	for (long i = 0; i < n; i++) {
		char id[24];
		int l = snprintf(id, sizeof id, "%ld", i);
		gpu_name(names, id, (size_t)l);
	}
	return 0;
}

/* ---- JSON output (printing only) ---- */

void cdi_json_str(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			buf_printf(b, "\\%c", *c);
		else if (*c < 0x20)
			buf_printf(b, "\\u%04x", *c);
		else
			buf_append(b, c, 1);
	}
	buf_append(b, "\"", 1);
}
