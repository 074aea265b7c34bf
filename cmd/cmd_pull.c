/* `qimg pull`: options to struct pull_opts, one pull, the manifest digest on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../pull/pull.h"
#include "../store/store.h"
#include "cmd.h"

/* Unformatted, so that CMD_LIMITS_HELP's option lines stay between the others. */
/* clang-format off */
static const char pull_help[] =
    "Usage: qimg pull [OPTIONS] REFERENCE\n\n"
    "Pull an image from a registry into the store, verify every blob, unpack its layers once, and print the\n"
    "digest of the image manifest.\n\n"
    "REFERENCE is [REGISTRY/]NAME[:TAG][@DIGEST]; docker.io and :latest are the defaults.\n\n"
    "Where it is pulled from (mirrors, insecure and blocked registries, short names, credential helpers) is read\n"
    "from registries.conf as podman reads it: $CONTAINERS_REGISTRIES_CONF, else\n"
    "~/.config/containers/registries.conf, else /etc/containers/registries.conf; then the *.conf drop-ins of\n"
    "/etc/containers/registries.conf.d (not with the user's file) and ~/.config/containers/registries.conf.d;\n"
    "then qimg's own file, which wins: $QIMG_REGISTRIES_CONF, else ~/.config/qimg/registries.conf, else\n"
    "/etc/qimg/registries.conf. A short name that could come from more than one registry, and has no alias, is\n"
    "asked about on a terminal as podman asks (not under short-name-mode = \"disabled\"), and the pick is\n"
    "recorded as an alias; without a terminal it is refused under \"enforcing\", else tried on each in order.\n\n"
    "Options:\n"
    "  -q, --quiet            no progress output, only the digest\n"
    "  --platform OS/ARCH[/VARIANT]\n"
    "                         which image of a multi-platform index (default: this machine's)\n"
    "  --tls-verify=false     allow unverified TLS, then plain HTTP, for this registry (default true)\n"
    "  --authfile FILE        credentials file (default: $REGISTRY_AUTH_FILE, else\n"
    "                         $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,\n"
    "                         ~/.docker/config.json)\n"
    "  --certs-dir DIR        CA and client certificates as DIR/HOST:PORT/{*.crt,*.cert,*.key} (default:\n"
    "                         /etc/containers/certs.d, ~/.config/containers/certs.d, /etc/docker/certs.d)\n"
    CMD_LIMITS_HELP
    "  -h, --help             this help\n\n"
    "Environment: QIMG_HTTP_TIMEOUT (seconds, default 30): connect timeout and stall limit.\n"
    "CONTAINERS_REGISTRIES_CONF, QIMG_REGISTRIES_CONF: the registries.conf files above (each must exist).\n"
    CMD_LIMITS_ENV_HELP "\n"
    "Examples:\n"
    "  qimg pull debian:bookworm\n"
    "  qimg pull --platform linux/arm64 alpine\n"
    "  qimg pull localhost:5000/app@sha256:0123...cdef\n"
    "  qimg pull --tls-verify=false 127.0.0.1:5000/test/busybox:latest\n"
    "  qimg pull --max-layer-size 64G --max-ratio 5000 example.com/huge-model:1\n";
/* clang-format on */

static int parse_bool(const char *opt, const char *v, bool *out)
{
	if (!v || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	cmd_error("pull: %s takes true or false, not \"%s\"", opt, v);
	return -1;
}

/* Options into *o; returns the index of REFERENCE, 0 when help was printed, -1 on a usage error. */
static int pull_options(int argc, char **argv, struct pull_opts *o)
{
	static const char *const with_value[] = {"--platform", "--authfile",      "--certs-dir",
	                                         "--cert-dir", CMD_LIMIT_OPTIONS, NULL};
	struct optscan s = {argc, argv, 1, NULL, NULL, NULL};
	bool verify = true;
	int r;

	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(pull_help, stdout);
			free(s.inl);
			return 0;
		} else if (!strcmp(s.name, "-q") || !strcmp(s.name, "--quiet")) {
			o->quiet = true;
		} else if (!strcmp(s.name, "--platform")) {
			o->platform = s.value;
		} else if (!strcmp(s.name, "--authfile")) {
			o->auth_file = s.value;
		} else if (!strcmp(s.name, "--certs-dir") || !strcmp(s.name, "--cert-dir")) {
			o->certs_dir = s.value;
		} else if (!strcmp(s.name, "--tls-verify")) {
			r = parse_bool("--tls-verify", s.value, &verify);
		} else if ((r = cmd_limit_option("pull", s.name, s.value, &o->limits)) != 0) {
			r = r < 0 ? -1 : 1;
		} else {
			cmd_error("pull: unknown option %s (see qimg pull --help)", s.name);
			r = -1;
		}
		if (r < 0)
			break;
	}
	free(s.inl);
	if (r < 0)
		return -1;
	if (s.i != argc - 1) {
		cmd_error(s.i >= argc ? "pull: missing REFERENCE (see qimg pull --help)"
		                      : "pull: expected one REFERENCE (see qimg pull --help)");
		return -1;
	}
	o->tls_verify_off = !verify;
	return cmd_limits_env("pull", &o->limits) < 0 ? -1 : s.i;
}

/* Which registry an ambiguous short name means, asked on the terminal (podman's prompt, as a numbered list). */
static int pull_choose(const char *short_name, const struct strv *names, struct qerr *err)
{
	char line[64], *end;
	long k;

	fprintf(stderr, "? Please select an image for %s:\n", short_name);
	for (size_t i = 0; i < names->n; i++)
		fprintf(stderr, "  %zu. %s\n", i + 1, names->v[i]);
	fprintf(stderr, "number [1-%zu]: ", names->n);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return qerr_set(err, "%s: no image selected (end of input)", short_name);
	k = strtol(line, &end, 10);
	if (end == line || (*end && *end != '\n') || k < 1 || (size_t)k > names->n)
		return qerr_set(err, "%s: no image selected (\"%.*s\" is not 1-%zu)", short_name,
		                (int)strcspn(line, "\n"), line, names->n);
	return (int)(k - 1);
}

int cmd_pull(struct gopts *g, int argc, char **argv)
{
	struct pull_opts o = {0};
	struct qerr err = {0};
	struct image_spec spec;
	struct store st;
	int at = pull_options(argc, argv, &o), rc;

	if (at <= 0)
		return at == 0 ? 0 : EXIT_USAGE;
	o.quiet = o.quiet || qlog_level == LOG_QUIET;
	o.progress = !o.quiet && isatty(STDERR_FILENO);
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) /* where podman asks */
		o.choose = pull_choose;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("pull", &err, 1);
	rc = pull_image(&st, argv[at], &o, &spec, &err);
	store_close(&st);
	if (rc < 0)
		return cmd_fail("pull", &err, 1);
	printf("%s\n", spec.manifest_digest);
	store_spec_free(&spec);
	return fflush(stdout) == 0 ? 0 : 1;
}
