/* CLI plumbing shared by every command: errors, option scanning, store and image resolution. */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_open_store(const struct gopts *g, struct store *st, struct qerr *err)
{
	return store_open(st, g->store, err);
}

int cmd_resolve_image(struct gopts *g, const char *arg, struct store *st, struct image_spec *spec, struct qerr *err)
{
	(void)g;
	if (digest_valid(arg))
		return store_spec_read(st, arg, spec, err);
	struct image_ref ref;
	if (ref_parse(arg, &ref, err) < 0)
		return -1;
	autofree char *name = ref_name(&ref);
	autofree char *digest = store_ref_get(st, name, ref_key(&ref), err);
	ref_free(&ref);
	if (!digest)
		return -1;
	return store_spec_read(st, digest, spec, err);
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
};

static int64_t *limit_field(struct ovl_unpack_limits *lim, size_t i)
{
	return i == 0 ? &lim->max_bytes : i == 1 ? &lim->max_ratio : &lim->max_entries;
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
