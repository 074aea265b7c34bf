/* `qimg load`: images from a docker-archive or an OCI layout / oci-archive into the store (qimg-pull). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../pull/pull.h"
#include "../store/store.h"
#include "cmd.h"

/* Unformatted, so that CMD_LIMITS_HELP's option lines stay between the others. */
/* clang-format off */
static const char load_help[] =
    "Usage: qimg load [-i FILE] [--tag NAME] [-q]\n\n"
    "Load images from FILE (default: standard input) into the store, as a pull would: every blob is checked\n"
    "against its digest, each new layer is unpacked once, and the image names are set last, so a damaged\n"
    "archive leaves no image behind. FILE is one of:\n"
    "  docker-archive   what 'docker save' and 'podman save' write (manifest.json, repositories, layers;\n"
    "                   also the OCI layout inside newer 'docker save' output)\n"
    "  oci-archive      a tar of an OCI image layout ('podman save --format oci-archive', 'qimg save')\n"
    "  OCI layout       a directory with oci-layout, index.json and blobs/ ('skopeo copy ... oci:DIR')\n"
    "Compressed tars (gzip, zstd, xz) are read too. Names come from RepoTags or from the index's\n"
    "io.containerd.image.name / org.opencontainers.image.ref.name annotations; an image without a name is\n"
    "loaded as localhost/<file name>:latest. For an index of several platforms, this machine's is loaded.\n"
    "Each name set is printed as \"Loaded image: NAME\" on stdout.\n\n"
    "Options:\n"
    "  -i, --input FILE   the archive or layout directory ('-': standard input)\n"
    "  --tag NAME         name the image NAME instead (the archive must hold exactly one image)\n"
    "  -q, --quiet        print nothing but errors\n"
    CMD_LIMITS_HELP
    "  -h, --help         this help\n\n"
    "Environment: " CMD_LIMITS_ENV_HELP "\n"
    "Examples:\n"
    "  docker save busybox:latest -o busybox.tar && qimg load -i busybox.tar\n"
    "  skopeo copy docker://docker.io/library/alpine:3.19 oci:alpine-oci && qimg load -i alpine-oci\n"
    "  qimg load --tag localhost/app:1.0 < app.tar\n"
    "  zcat image.tar.gz | qimg load\n";
/* clang-format on */

/* Options; returns 1 to go on, 0 after --help, -1 on a usage error. */
static int load_options(int argc, char **argv, const char **input, const char **tag, bool *quiet,
                        struct ovl_unpack_limits *lim)
{
	static const char *const with_value[] = {"-i", "--input", "--tag", "-t", CMD_LIMIT_OPTIONS, NULL};
	struct optscan s = {argc, argv, 1, NULL, NULL, NULL};
	int r;

	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(load_help, stdout);
			free(s.inl);
			return 0;
		} else if (!strcmp(s.name, "-i") || !strcmp(s.name, "--input")) {
			*input = s.value;
		} else if (!strcmp(s.name, "--tag") || !strcmp(s.name, "-t")) {
			*tag = s.value;
		} else if (!strcmp(s.name, "-q") || !strcmp(s.name, "--quiet")) {
			*quiet = true;
		} else if ((r = cmd_limit_option("load", s.name, s.value, lim)) != 0) {
			if (r < 0)
				break;
		} else {
			cmd_error("load: unknown option %s (see qimg load --help)", s.name);
			r = -1;
			break;
		}
	}
	free(s.inl);
	if (r == 0 && s.i < argc) {
		cmd_error("load: unexpected argument \"%s\" (the file goes after -i)", argv[s.i]);
		r = -1;
	}
	if (r == 0)
		r = cmd_limits_env("load", lim);
	return r < 0 ? -1 : 1;
}

int cmd_load(struct gopts *g, int argc, char **argv)
{
	const char *input = "-", *tag = NULL;
	bool quiet = qlog_level == LOG_QUIET;
	struct qerr err = {0};
	struct strv loaded = {0};
	struct ovl_unpack_limits lim = {0};
	struct store st;
	int r = load_options(argc, argv, &input, &tag, &quiet, &lim), rc;

	if (r <= 0)
		return r == 0 ? 0 : EXIT_USAGE;
	if (!strcmp(input, "-") && isatty(STDIN_FILENO)) {
		cmd_error("load: standard input is a terminal; give the archive with -i FILE (see qimg load --help)");
		return EXIT_USAGE;
	}
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("load", &err, 1);
	rc = load_image(&st, input, tag, &lim, &loaded, &err);
	store_close(&st);
	if (rc < 0) {
		strv_free(&loaded);
		return cmd_fail("load", &err, 1);
	}
	for (size_t i = 0; i < loaded.n && !quiet; i++)
		printf("Loaded image: %s\n", loaded.v[i]);
	strv_free(&loaded);
	return fflush(stdout) == 0 ? 0 : 1;
}
