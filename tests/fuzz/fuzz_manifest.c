/* Fuzz target: manifests and indexes (pull/manifest.c manifest_parse, index_select, registry_error_message).
   The first byte picks the Content-Type the "registry" sent; the rest is the body. Whatever parses must hold
   only valid digests, a supported config type, layer types the unpacker knows, and stay within the limits. */
#include "../../pull/internal.h"
#include "fuzz.h"

static const char *const ctypes[] = {NULL, MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST,
                                     MT_DOCKER_SCHEMA1_SIGNED, "application/json", "text/html; charset=utf-8"};

static void check_descriptor(const struct descriptor *d)
{
	if (!d->media_type || !store_digest_valid(d->digest) || d->size < 0)
		abort();
}

static void check_image(const struct manifest *m)
{
	check_descriptor(&m->config);
	if (m->nlayers == 0 || m->nlayers > LAYERS_MAX || m->config.size > CONFIG_MAX)
		abort();
	if (strcmp(m->config.media_type, MT_OCI_CONFIG) != 0 && strcmp(m->config.media_type, MT_DOCKER_CONFIG) != 0)
		abort();
	for (size_t i = 0; i < m->nlayers; i++) {
		check_descriptor(&m->layers[i]);
		if (!layer_media_type_ok(m->layers[i].media_type))
			abort();
	}
}

static void check_index(const struct index *ix)
{
	static const char *const want[] = {"linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"};
	if (ix->n > INDEX_MAX)
		abort();
	for (size_t i = 0; i < ix->n; i++)
		check_descriptor(&ix->manifests[i]);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct platform p;
		struct qerr err = {0};
		if (platform_parse(want[i], &p, &err) < 0)
			abort();
		const struct descriptor *d = index_select(ix, &p, &err);
		if (d && !platform_match(&p, &d->platform))
			abort();
		if (!d && !err.msg[0])
			abort();
		platform_free(&p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	struct index ix;
	enum manifest_kind kind;
	struct qerr err = {0};
	if (size == 0 || size > MANIFEST_MAX)
		return 0;
	const char *ctype = ctypes[data[0] % (sizeof ctypes / sizeof ctypes[0])];
	if (manifest_parse((const char *)data + 1, size - 1, ctype, &kind, &m, &ix, &err) == 0) {
		if (kind == MANIFEST_IMAGE)
			check_image(&m);
		else
			check_index(&ix);
		manifest_free(&m);
		index_free(&ix);
	} else if (!err.msg[0]) {
		abort();
	}
	free(registry_error_message((const char *)data + 1, size - 1));
	return 0;
}
