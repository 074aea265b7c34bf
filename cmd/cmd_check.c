/* `qimg system check`: verify every blob's digest, every layer's completeness and every ref; optionally repair. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "../run/run.h"
#include "../store/digest.h"
#include "../store/store.h"


struct check {
	struct store *st;
	bool repair;
	size_t ok, problems, repaired;
};

static void problem(struct check *c, bool fixed, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct check *c, bool fixed, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("problem: ");
	vprintf(fmt, ap);
	va_end(ap);
	printf("%s\n", fixed ? " (repaired)" : "");
	c->problems++;
	if (fixed)
		c->repaired++;
}

/* The entries of rel but dot files; one that cannot be listed is a problem (a missing one is empty). */
static void names(struct check *c, const char *rel, struct strv *out)
{
	struct strv all = {0};
	struct qerr err = {0};
	if (store_dir_list(c->st, rel, &all, &err) < 0 && err.code != ENOENT)
		problem(c, false, "%s", err.msg);
	for (size_t i = 0; i < all.n; i++)
		if (all.v[i][0] != '.')
			strv_push(out, all.v[i]);
	strv_free(&all);
}

static void check_blobs(struct check *c)
{
	struct strv v = {0};
	names(c, "blobs/sha256", &v);
	for (size_t i = 0; i < v.n; i++) {
		autofree char *digest = xasprintf("sha256:%s", v.v[i]);
		autofree char *rel = xasprintf("blobs/sha256/%s", v.v[i]);
		struct qerr err = {0};
		char got[DIGEST_LEN + 1] = "";
		int fd = store_digest_valid(digest) ? openat(c->st->rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		bool good = fd >= 0 && digest_fd(fd, got, &err) == 0 && !strcmp(got, digest);
		if (fd >= 0)
			close(fd);
		if (good) {
			c->ok++;
			continue;
		}
		bool fixed = c->repair && unlinkat(c->st->rootfd, rel, 0) == 0;
		problem(c, fixed, "blob %s: content does not match its digest%s", v.v[i], err.msg[0] ? err.msg : "");
	}
	strv_free(&v);
}

static void check_layers(struct check *c)
{
	struct strv v = {0};
	names(c, "layers", &v);
	for (size_t i = 0; i < v.n; i++) {
		const char *id = v.v[i];
		size_t idlen;
		if (store_layer_sidefile(id, &idlen)) {
			autofree char *base = xstrndup(id, idlen);
			if (!store_layer_exists(c->st, base)) {
				autofree char *rel = xasprintf("layers/%s", id);
				bool fixed = c->repair && unlinkat(c->st->rootfd, rel, 0) == 0;
				problem(c, fixed, "layer %s: %s without a layer directory", base, id + idlen);
			}
			continue;
		}
		autofree char *meta = xasprintf("layers/%s.json", id);
		if (faccessat(c->st->rootfd, meta, F_OK, AT_EACCESS) == 0) {
			c->ok++;
			continue;
		}
		autofree char *rel = xasprintf("layers/%s", id);
		struct qerr err;
		bool fixed = c->repair && rm_rf_at(c->st->rootfd, rel, &err) == 0;
		problem(c, fixed, "layer %s: incomplete (no completion record)", id);
	}
	strv_free(&v);
}

static bool spec_complete(struct check *c, const struct image_spec *s, const char *name)
{
	bool good = true;
	const char *need[2] = {s->manifest_digest, s->config_digest};
	for (int k = 0; k < 2; k++)
		if (!store_blob_exists(c->st, need[k])) {
			problem(c, false, "image %s: blob %s missing (qimg pull restores it)", name, need[k]);
			good = false;
		}
	for (size_t i = 0; i < s->layers.n; i++)
		if (!store_layer_exists(c->st, s->layers.v[i])) {
			problem(c, false, "image %s: layer %s missing (qimg pull restores it)", name, s->layers.v[i]);
			good = false;
		}
	return good;
}

static void check_refs(struct check *c)
{
	struct store_ref *refs;
	size_t n;
	struct qerr err;
	if (store_refs_list(c->st, &refs, &n, &err) < 0) {
		problem(c, false, "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		autofree char *label =
		    xasprintf("%s%s%s", refs[i].name, store_digest_valid(refs[i].key) ? "@" : ":", refs[i].key);
		struct image_spec s;
		if (store_spec_read(c->st, refs[i].digest, &s, &err) < 0) {
			bool fixed = c->repair && store_ref_remove(c->st, refs[i].name, refs[i].key, &err) == 0;
			problem(c, fixed, "image %s: %s", label, err.msg);
			continue;
		}
		if (spec_complete(c, &s, label))
			c->ok++;
		store_spec_free(&s);
	}
	store_refs_free(refs, n);
}

static const char check_help[] =
    "Usage: qimg system check [--repair]\n\n"
    "Verify every blob against its sha256 digest, every unpacked layer's completion record and every\n"
    "image ref. Prints one line per problem; exits 1 when problems remain.\n"
    "  --repair   remove corrupt blobs, incomplete layers and dangling refs; a later pull re-fetches them\n\n"
    "Examples:\n  qimg system check\n  qimg system check --repair\n";

int cmd_system_check(struct gopts *g, int argc, char **argv)
{
	bool repair = false;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(check_help, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--repair")) {
			repair = true;
		} else {
			cmd_error("system check: unexpected argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	struct qerr err = {0};
	struct store st;
	if (cmd_open_store(g, &st, &err) < 0 || (st.rootless && userns_enter(&err) < 0))
		return cmd_fail("system check", &err, 1);
	/* Exclusive: no pull may commit while we judge what is complete. */
	int lock = store_lock(&st, true, true, &err);
	if (lock < 0) {
		store_close(&st);
		return cmd_fail("system check", &err, 1);
	}
	struct check c = {.st = &st, .repair = repair};
	check_blobs(&c);
	check_layers(&c);
	check_refs(&c);
	close(lock);
	store_close(&st);
	printf("%zu objects ok, %zu problems, %zu repaired\n", c.ok, c.problems, c.repaired);
	return c.problems > c.repaired ? 1 : 0;
}
