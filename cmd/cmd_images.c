/* `qimg images`, `qimg inspect`, `qimg rmi`: read and drop image refs (libc only: the stored JSON is passed through).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pull/pull.h"
#include "../store/store.h"
#include "cmd.h"

#define BLOB_JSON_MAX (8u << 20)

static const char images_help[] =
    "Usage: qimg images [-q] [--digests] [--format table|json]\n\n"
    "List the images in the store: repository, tag, manifest digest, size, created.\n\n"
    "  -q              print only the manifest digests\n"
    "  --format json   one JSON array of {name, tag, digest, size, created, platform, layers}\n\n"
    "Examples:\n  qimg images\n  qimg images --format json | jq '.[].name'\n";

int cmd_images(struct gopts *g, int argc, char **argv)
{
	static const char *const with_value[] = {"--format", NULL};
	struct optscan s = {argc, argv, 1};
	bool quiet = false;
	bool json = false;
	int r;
	while ((r = optscan_next(&s, with_value)) > 0) {
		if (cmd_is_help(s.name)) {
			fputs(images_help, stdout);
			return 0;
		} else if (!strcmp(s.name, "-q") || !strcmp(s.name, "--quiet"))
			quiet = true;
		else if (!strcmp(s.name, "--format")) {
			if (strcmp(s.value, "json") && strcmp(s.value, "table")) {
				cmd_error("images: unknown format \"%s\" (table or json)", s.value);
				return EXIT_USAGE;
			}
			json = !strcmp(s.value, "json");
		} else if (strcmp(s.name, "--digests") != 0) {
			cmd_error("images: unknown option %s", s.name);
			return EXIT_USAGE;
		}
	}
	if (r < 0)
		return EXIT_USAGE;
	if (s.i < argc) {
		cmd_error("images: unexpected argument \"%s\"", argv[s.i]);
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("images", &err, 1);
	struct store_ref *refs;
	size_t n;
	if (store_refs_list(&st, &refs, &n, &err) < 0) {
		store_close(&st);
		return cmd_fail("images", &err, 1);
	}
	if (json)
		fputs("[", stdout);
	else if (!quiet)
		printf("%-40s %-20s %-19s %-9s %s\n", "REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED");
	for (size_t i = 0; i < n; i++) {
		struct image_spec spec;
		bool have = store_spec_read(&st, refs[i].digest, &spec, &err) == 0;
		bool by_digest = store_digest_valid(refs[i].key);
		if (quiet && !json) {
			printf("%s\n", refs[i].digest);
		} else if (json) {
			printf("%s\n  {\"name\": ", i ? "," : "");
			cmd_json_str(stdout, refs[i].name);
			printf(", \"tag\": ");
			if (by_digest)
				fputs("null", stdout);
			else
				cmd_json_str(stdout, refs[i].key);
			printf(", \"digest\": ");
			cmd_json_str(stdout, refs[i].digest);
			printf(", \"size\": %lld, \"created\": ", have ? (long long)spec.size : 0LL);
			cmd_json_str(stdout, have ? spec.created : "");
			printf(", \"platform\": ");
			cmd_json_str(stdout, have ? spec.platform : "");
			printf(", \"layers\": %zu}", have ? spec.layers.n : 0);
		} else {
			char size[32];
			cmd_human_size(have ? spec.size : 0, size, sizeof size);
			printf("%-40s %-20s %-19.19s %-9s %s\n", refs[i].name, by_digest ? "<none>" : refs[i].key,
			       store_digest_hex(refs[i].digest), size, have && spec.created ? spec.created : "");
		}
		if (have)
			store_spec_free(&spec);
	}
	if (json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	store_refs_free(refs, n);
	store_close(&st);
	return 0;
}

static const char inspect_help[] =
    "Usage: qimg inspect IMAGE\n\n"
    "Print the image's manifest digest, manifest, config and unpacked layer ids as one JSON object.\n"
    "IMAGE is a reference (busybox, registry:5000/a/b:tag) or a manifest digest (sha256:...).\n\n"
    "Example:\n  qimg inspect busybox | jq .Config.config.Env\n";

int cmd_inspect(struct gopts *g, int argc, char **argv)
{
	if (argc != 2 || cmd_is_help(argv[1])) {
		fputs(inspect_help, argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("inspect", &err, 1);
	struct image_spec spec;
	int rc = 1;
	if (cmd_resolve_image(g, argv[1], &st, &spec, &err) < 0) {
		store_close(&st);
		return cmd_fail("inspect", &err, 1);
	}
	autofree char *manifest = store_blob_read(&st, spec.manifest_digest, BLOB_JSON_MAX, NULL, &err);
	autofree char *config = manifest ? store_blob_read(&st, spec.config_digest, BLOB_JSON_MAX, NULL, &err) : NULL;
	if (manifest && config) {
		printf("{\n\"Digest\": ");
		cmd_json_str(stdout, spec.manifest_digest);
		printf(",\n\"Platform\": ");
		cmd_json_str(stdout, spec.platform);
		printf(",\n\"Layers\": [");
		for (size_t i = 0; i < spec.layers.n; i++) {
			printf("%s", i ? ", " : "");
			cmd_json_str(stdout, spec.layers.v[i]);
		}
		printf("],\n\"Manifest\": %s,\n\"Config\": %s\n}\n", manifest, config);
		rc = 0;
	} else {
		rc = cmd_fail("inspect", &err, 1);
	}
	store_spec_free(&spec);
	store_close(&st);
	return rc;
}

static const char rmi_help[] =
    "Usage: qimg rmi IMAGE...\n\n"
    "Remove image references. Blobs and unpacked layers no other image uses are freed by the next\n"
    "'qimg gc'. Runs in progress keep working. IMAGE is found as 'qimg run' finds it (short names through\n"
    "registries.conf); an image id (12+ hex digits of the DIGEST column) removes every name of that image.\n\n"
    "Examples:\n  qimg rmi busybox && qimg gc\n  qimg rmi 3f57d9401f8d\n";

/* The ref IMAGE names (a short name as run finds it); an image id drops every name of that image. */
static int rmi_one(struct store *st, const char *arg, struct qerr *err)
{
	struct image_found f;
	if (cmd_find_image(arg, st, &f, err) < 0)
		return -1;
	int rc = 0;
	if (f.name) {
		rc = store_ref_remove(st, f.name, f.key, err);
		if (rc == 0)
			printf("Untagged: %s%s%s\n", f.name, store_digest_valid(f.key) ? "@" : ":", f.key);
		cmd_image_found_free(&f);
		return rc;
	}
	struct store_ref *refs;
	size_t n;
	if (store_refs_list(st, &refs, &n, err) < 0) {
		cmd_image_found_free(&f);
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (strcmp(refs[i].digest, f.digest) != 0)
			continue;
		rc = store_ref_remove(st, refs[i].name, refs[i].key, err);
		if (rc == 0)
			printf("Untagged: %s%s%s\n", refs[i].name, store_digest_valid(refs[i].key) ? "@" : ":", refs[i].key);
	}
	store_refs_free(refs, n);
	cmd_image_found_free(&f);
	return rc;
}

int cmd_rmi(struct gopts *g, int argc, char **argv)
{
	if (argc < 2 || cmd_is_help(argv[1])) {
		fputs(rmi_help, argc >= 2 ? stdout : stderr);
		return argc >= 2 ? 0 : EXIT_USAGE;
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0)
		return cmd_fail("rmi", &err, 1);
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (rmi_one(&st, argv[i], &err) < 0)
			rc = cmd_fail("rmi", &err, 1);
	store_close(&st);
	return rc;
}
