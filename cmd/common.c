/* CLI plumbing shared by every command: errors, option scanning, store and image resolution. */
#include "cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../overlay/overlay.h"
#include "../pull/pull.h"
#include "../store/store.h"

void cmd_error(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "qimg: %s\n", line);
}

int cmd_fail(const char *command, const struct qerr *err, int def)
{
	/* One line: fold any newline a library put into the message. */
	char msg[sizeof err->msg];
	snprintf(msg, sizeof msg, "%s", err->msg);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (command && strncmp(msg, command, strlen(command)) != 0)
		fprintf(stderr, "qimg: %s: %s\n", command, msg);
	else
		fprintf(stderr, "qimg: %s\n", msg);
	return err->exit_status ? err->exit_status : def;
}

void cmd_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

bool cmd_is_help(const char *arg)
{
	return arg && (!strcmp(arg, "-h") || !strcmp(arg, "--help"));
}

static bool takes_value(const char *name, const char *const *with_value)
{
	for (; with_value && *with_value; with_value++)
		if (!strcmp(name, *with_value))
			return true;
	return false;
}

int optscan_next(struct optscan *s, const char *const *with_value)
{
	free(s->inl);
	s->inl = NULL;
	s->name = s->value = NULL;
	if (s->i >= s->argc)
		return 0;
	char *a = s->argv[s->i];
	if (!strcmp(a, "--")) {
		s->i++;
		return 0;
	}
	if (a[0] != '-' || a[1] == '\0')
		return 0;
	s->i++;
	char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
	if (eq) {
		s->inl = xstrndup(a, (size_t)(eq - a));
		s->name = s->inl;
		s->value = eq + 1;
		if (!takes_value(s->name, with_value) && strcmp(s->value, "true") && strcmp(s->value, "false")) {
			cmd_error("option %s takes no value", s->name);
			return -1;
		}
		return 1;
	}
	s->name = a;
	/* "-eK=V" short form for single-letter options that take a value. */
	if (a[1] != '-' && a[2] != '\0') {
		char shortname[3] = {'-', a[1], '\0'};
		if (takes_value(shortname, with_value)) {
			s->inl = xstrdup(shortname);
			s->name = s->inl;
			s->value = a + 2;
			return 1;
		}
	}
	if (takes_value(a, with_value)) {
		if (s->i >= s->argc) {
			cmd_error("option %s needs a value", a);
			return -1;
		}
		s->value = s->argv[s->i++];
	}
	return 1;
}

char *cmd_helper_find(struct qerr *err)
{
	return cmd_helper_find_named("qimg-pull", "QIMG_PULL_HELPER", err);
}

char *cmd_helper_find_named(const char *name, const char *env_var, struct qerr *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *env = getenv(env_var);
	char *candidates[4] = {0}, *found = NULL;
	int nc = 0;
	if (env && *env)
		candidates[nc++] = xstrdup(env);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			candidates[nc++] = xasprintf("%s/%s", self, name);
			/* an install moved as a whole (DESTDIR, a relocated prefix): bin/../libexec/qimg */
			candidates[nc++] = xasprintf("%s/../libexec/qimg/%s", self, name);
		}
	}
	candidates[nc++] = xasprintf("%s/%s", QIMG_LIBEXECDIR, name);
	for (int i = 0; i < nc; i++) {
		if (!found && access(candidates[i], X_OK) == 0)
			found = candidates[i];
		else
			free(candidates[i]);
	}
	if (!found)
		qerr_set(err, "helper %s not found (looked beside %s and in %s)", name, n > 0 ? self : "qimg",
		         QIMG_LIBEXECDIR);
	return found;
}

int cmd_open_store(const struct gopts *g, struct store *st, struct qerr *err)
{
	return store_open(st, g->store, err);
}

#define ID_PREFIX_MIN 12

/* arg as an image id: "sha256:" optional, then 12 to 64 lowercase hex digits. */
static const char *id_hex(const char *arg)
{
	const char *h = strncmp(arg, "sha256:", 7) == 0 ? arg + 7 : arg;
	size_t n = hex_span(h);
	return h[n] == '\0' && n >= ID_PREFIX_MIN && n <= DIGEST_HEX_LEN ? h : NULL;
}

/* The one named image whose manifest digest starts with hex: 1 found (*digest set), 0 none, -1 ambiguous. */
static int lookup_id(struct store *st, const char *arg, const char *hex, char **digest, struct qerr *err)
{
	struct store_ref *refs;
	size_t n, len = strlen(hex);
	if (store_refs_list(st, &refs, &n, err) < 0)
		return -1;
	const char *found = NULL, *other = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(store_digest_hex(refs[i].digest), hex, len) != 0)
			continue;
		if (!found)
			found = refs[i].digest;
		else if (strcmp(found, refs[i].digest) != 0)
			other = refs[i].digest;
	}
	int rc = found ? 1 : 0;
	if (other)
		rc = qerr_set(err, "image id %s is ambiguous: it starts %s and %s (give more digits)", arg, found,
		              other);
	else if (found)
		*digest = xstrdup(found);
	store_refs_free(refs, n);
	return rc;
}

/* The first of the names registries.conf gives arg that the store holds. */
static int lookup_name(struct store *st, const char *arg, struct image_found *f, struct qerr *err)
{
	struct strv names = {0};
	int rc = pull_local_names(arg, &names, err);
	for (size_t i = 0; rc == 0 && i < names.n && !f->digest; i++) {
		struct image_ref ref;
		struct qerr miss;
		if (ref_parse(names.v[i], &ref, err) < 0) {
			rc = -1;
			break;
		}
		char *name = ref_name(&ref);
		f->digest = store_ref_get(st, name, ref_key(&ref), &miss);
		if (f->digest) {
			f->name = name;
			f->key = xstrdup(ref_key(&ref));
		} else {
			free(name);
			if (miss.code != 0 && miss.code != ENOENT)
				rc = (*err = miss, -1);
		}
		ref_free(&ref);
	}
	if (rc == 0 && !f->digest) {
		struct buf tried = {0};
		buf_printf(&tried, "%s", "");
		for (size_t i = 0; names.n > 1 || strcmp(names.v[0], arg) != 0 ? i < names.n : false; i++)
			buf_printf(&tried, "%s%s", i ? ", " : " (looked for ", names.v[i]);
		rc = qerr_set(err, "image not found: %s%s%s; pull it first", arg, tried.p, tried.len ? ")" : "");
		err->code = ENOENT;
		buf_free(&tried);
	}
	strv_free(&names);
	return rc;
}

int cmd_find_image(const char *arg, struct store *st, struct image_found *f, struct qerr *err)
{
	memset(f, 0, sizeof *f);
	if (store_digest_valid(arg)) {
		f->digest = xstrdup(arg);
		return 0;
	}
	/* An id first (docker's order), but only when it names an image: "cafe0123beef" is a valid name too. */
	const char *hex = id_hex(arg);
	int r = hex ? lookup_id(st, arg, hex, &f->digest, err) : 0;
	if (r != 0)
		return r < 0 ? -1 : 0;
	return lookup_name(st, arg, f, err);
}

void cmd_image_found_free(struct image_found *f)
{
	free(f->digest);
	free(f->name);
	free(f->key);
	memset(f, 0, sizeof *f);
}

int cmd_resolve_image(struct gopts *g, const char *arg, struct store *st, struct image_spec *spec, struct qerr *err)
{
	(void)g;
	struct image_found f;
	if (cmd_find_image(arg, st, &f, err) < 0)
		return -1;
	int rc = store_spec_read(st, f.digest, spec, err);
	cmd_image_found_free(&f);
	return rc;
}

void cmd_human_size(int64_t bytes, char *out, size_t n)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%lldB", (long long)bytes);
	else
		snprintf(out, n, "%.3g%s", v, units[u]);
}

/* A positive decimal count ("1000"), or -1. */
static int64_t parse_count(const char *s)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	return errno || *end || v <= 0 ? -1 : v;
}

static const struct limit_def {
	const char *option, *env, *example;
	bool size; /* SIZE (500M, 2G), else a count */
} limit_defs[] = {
    {"--max-layer-size", "QIMG_MAX_LAYER_SIZE", "500M, 2G", true},
    {"--max-ratio", "QIMG_MAX_RATIO", "1000", false},
    {"--max-entries", "QIMG_MAX_ENTRIES", "10000000", false},
    {"--max-apparent-size", "QIMG_MAX_APPARENT_SIZE", "2G, 64G", true},
};

static int64_t *limit_field(struct ovl_unpack_limits *lim, size_t i)
{
	int64_t *const fields[] = {&lim->max_bytes, &lim->max_ratio, &lim->max_entries, &lim->max_apparent};
	return fields[i];
}

/* The value of limit i into *lim, or -1 after saying why not; what names where it came from. */
static int limit_set(const char *command, size_t i, const char *what, const char *value, struct ovl_unpack_limits *lim)
{
	const struct limit_def *d = &limit_defs[i];
	if (!value)
		value = "";
	int64_t v = d->size ? parse_size(value) : parse_count(value);
	if (v <= 0) {
		cmd_error("%s: %s: invalid %s \"%s\" (a positive %s, e.g. %s)", command, what,
		          d->size ? "size" : "number", value, d->size ? "size" : "whole number", d->example);
		return -1;
	}
	*limit_field(lim, i) = v;
	return 0;
}

int cmd_limit_option(const char *command, const char *name, const char *value, struct ovl_unpack_limits *lim)
{
	for (size_t i = 0; i < sizeof limit_defs / sizeof limit_defs[0]; i++)
		if (!strcmp(name, limit_defs[i].option))
			return limit_set(command, i, name, value, lim) < 0 ? -1 : 1;
	return 0;
}

int cmd_limits_env(const char *command, struct ovl_unpack_limits *lim)
{
	for (size_t i = 0; i < sizeof limit_defs / sizeof limit_defs[0]; i++) {
		const char *v = getenv(limit_defs[i].env);
		if (*limit_field(lim, i) == 0 && v && limit_set(command, i, limit_defs[i].env, v, lim) < 0)
			return -1;
	}
	return 0;
}
