/* Fuzz target: the run spec reader (store/store.c store_spec_read) on a file in a scratch store. Whatever
   reads back must be freeable and written again must read back the same. */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"

#define SPEC_DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void write_spec_file(struct store *st, const uint8_t *data, size_t size)
{
	struct qerr err = {0};
	autofree char *rel = xasprintf("specs/%s", store_digest_hex(SPEC_DIGEST));
	if (write_file_atomic_at(st->rootfd, rel, data, size, 0644, false, &err) < 0)
		abort();
}

static bool strv_eq(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

/* Write what was read (when it is writable: a valid manifest digest) and compare the second reading. */
static void round_trip(struct store *st, const struct image_spec *s)
{
	struct image_spec again;
	struct qerr err = {0};
	if (!store_digest_valid(s->manifest_digest) || strcmp(s->manifest_digest, SPEC_DIGEST) != 0)
		return;
	if (store_spec_write(st, s, &err) < 0 || store_spec_read(st, SPEC_DIGEST, &again, &err) < 0)
		abort();
	if (!strv_eq(&s->layers, &again.layers) || !strv_eq(&s->env, &again.env) || !strv_eq(&s->cmd, &again.cmd) ||
	    !strv_eq(&s->entrypoint, &again.entrypoint) || !strv_eq(&s->blobs, &again.blobs) ||
	    s->has_cmd != again.has_cmd || s->has_entrypoint != again.has_entrypoint)
		abort();
	store_spec_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *st = fuzz_store("spec");
	struct image_spec spec;
	struct qerr err = {0};
	if (size > (1 << 20))
		return 0;
	write_spec_file(st, data, size);
	if (store_spec_read(st, SPEC_DIGEST, &spec, &err) == 0) {
		round_trip(st, &spec);
		store_spec_free(&spec);
	} else if (!err.msg[0]) {
		abort();
	}
	return 0;
}
