/* `qimg save`: images of the store as an oci-archive (qimg-pull: libarchive). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../pull/pull.h"
#include "../store/store.h"
#include "cmd.h"

static const char save_help[] =
    "Usage: qimg save [-o FILE] [--format oci-archive] IMAGE...\n\n"
    "Write the images as an oci-archive: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/)\n"
    "holding each image's manifest, config and layers exactly as they were pulled, so every digest stays\n"
    "the same. index.json names each image (org.opencontainers.image.ref.name and io.containerd.image.name\n"
    "annotations, the full reference). 'qimg load', 'podman load' and 'skopeo copy oci-archive:FILE ...'\n"
    "read it. The file is written to a temporary name beside FILE and renamed when complete.\n\n"
    "Options:\n"
    "  -o, --output FILE         where to write (default: standard output, unless it is a terminal)\n"
    "  --format oci-archive      the only format (accepted for podman's command line)\n"
    "  -h, --help                this help\n\n"
    "Examples:\n"
    "  qimg save busybox -o busybox.tar\n"
    "  qimg save debian:bookworm | ssh node2 qimg load\n"
    "  skopeo copy oci-archive:busybox.tar docker://registry.local:5000/busybox:latest\n";

/* Options (also after the IMAGEs, as podman takes them) into *output, IMAGEs into images; 1 to go on, 0 after
   --help, -1 on a usage error. */
static int save_options(int argc, char **argv, const char **output, struct strv *images)
{
	static const char *const with_value[] = {"-o", "--output", "--format", NULL};
	struct optscan s = {argc, argv, 1, NULL, NULL, NULL};
	int r;

	while ((r = optscan_next(&s, with_value)) >= 0) {
		if (r == 0 && s.i >= argc)
			break;
		if (r == 0) {
			strv_push(images, argv[s.i++]);
		} else if (cmd_is_help(s.name)) {
			fputs(save_help, stdout);
			free(s.inl);
			return 0;
		} else if (!strcmp(s.name, "-o") || !strcmp(s.name, "--output")) {
			*output = s.value;
		} else if (!strcmp(s.name, "--format") && strcmp(s.value, "oci-archive") != 0) {
			cmd_error("save: format \"%s\" is not supported (only oci-archive)", s.value);
			r = -1;
			break;
		} else if (strcmp(s.name, "--format") != 0) {
			cmd_error("save: unknown option %s (see qimg save --help)", s.name);
			r = -1;
			break;
		}
	}
	free(s.inl);
	if (r < 0)
		return -1;
	if (images->n == 0) {
		cmd_error("save: missing IMAGE (see qimg save --help)");
		return -1;
	}
	return 1;
}

/* IMAGE -> its manifest digest and, for a reference, the full name for the archive. */
static int save_resolve(struct gopts *g, struct store *st, const char *arg, char **digest, char **name,
                        struct qerr *err)
{
	struct image_spec spec;
	struct image_ref ref;

	if (cmd_resolve_image(g, arg, st, &spec, err) < 0)
		return -1;
	*digest = xstrdup(spec.manifest_digest);
	store_spec_free(&spec);
	*name = NULL;
	if (!store_digest_valid(arg) && ref_parse(arg, &ref, err) == 0) {
		autofree char *rn = ref_name(&ref);
		*name = ref.tag ? xasprintf("%s:%s", rn, ref.tag) : NULL;
		ref_free(&ref);
	}
	return 0;
}

static int save_run(struct gopts *g, struct store *st, int n, char **images, const char *output, struct qerr *err)
{
	struct save_image *v = xcalloc((size_t)n, sizeof(*v));
	char **digests = xcalloc((size_t)n, sizeof(char *)), **names = xcalloc((size_t)n, sizeof(char *));
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		rc = save_resolve(g, st, images[i], &digests[i], &names[i], err);
		v[i] = (struct save_image){digests[i], names[i]};
	}
	if (rc == 0)
		rc = output ? save_images_file(st, v, (size_t)n, output, err)
		            : save_images(st, v, (size_t)n, STDOUT_FILENO, err);
	for (int i = 0; i < n; i++) {
		free(digests[i]);
		free(names[i]);
	}
	free(digests);
	free(names);
	free(v);
	return rc;
}

int cmd_save(struct gopts *g, int argc, char **argv)
{
	const char *output = NULL;
	struct strv images = {0};
	struct qerr err = {0};
	struct store st;
	int r = save_options(argc, argv, &output, &images), rc;

	if (r <= 0) {
		strv_free(&images);
		return r == 0 ? 0 : EXIT_USAGE;
	}
	if (output && !strcmp(output, "-"))
		output = NULL;
	if (!output && isatty(STDOUT_FILENO)) {
		cmd_error("save: refusing to write an archive to a terminal; use -o FILE or redirect stdout");
		strv_free(&images);
		return EXIT_USAGE;
	}
	if (cmd_open_store(g, &st, &err) < 0) {
		strv_free(&images);
		return cmd_fail("save", &err, 1);
	}
	rc = save_run(g, &st, (int)images.n, images.v, output, &err);
	strv_free(&images);
	store_close(&st);
	return rc < 0 ? cmd_fail("save", &err, 1) : 0;
}
