/* pull_image(): resolve a reference to one image manifest, fetch and verify its blobs (resumable, once per
   store), unpack the layers, then publish the run spec and the image ref. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../overlay/overlay.h"
#include "../userns/userns.h"
#include "../store/digest.h"
#include "internal.h"

#define PARALLEL_DEFAULT 4

struct pull {
	struct store *st;
	const struct pull_opts *o;
	struct image_ref ref;
	char *name;   /* "domain/path" */
	char *refstr; /* as normalised, for messages */
	struct registry *reg;
	struct progress *prog;
	int store_lock;
	struct platform want;
	/* the index, when the reference named one */
	bool have_index;
	char index_digest[DIGEST_LEN + 1];
	struct http_resp index_resp;
	/* the image manifest */
	char manifest_digest[DIGEST_LEN + 1];
	struct http_resp manifest_resp;
	struct manifest m;
	struct platform platform; /* from the index entry, else from the config */
	struct image_config cfg;
	bool have_cfg;
	/* layers unpack while the blobs download */
	struct ovl_unpacker *unp;
	struct blob_set *dls; /* the blobs being fetched now */
	bool layers_queued;
};

/* One blob being fetched into tmp/partial-<hex> (kept across runs so a later pull resumes it). */
struct blob_dl {
	struct pull *p;
	const struct descriptor *d;
	const char *what;
	char tmpname[16 + DIGEST_HEX_LEN];
	int fd, lock;
	struct digester *dg;
	int64_t have;
	bool resumed, restarted, discard, committed;
	size_t prog_id;
};

struct blob_set {
	struct blob_dl *v;
	size_t n;
};

static int pull_config(struct pull *p, struct qerr *err);
static int layers_queue(struct pull *p, struct qerr *err);

/* ---- the manifest ---- */

static int manifest_check(const char *reference, const char *want, struct http_resp *resp, char digest[DIGEST_LEN + 1],
                          struct qerr *err)
{
	const char *dcd = resp->docker_digest;

	digest_buf(resp->body.p ? resp->body.p : "", resp->body.len, digest);
	if (want && strcmp(digest, want) != 0)
		return qerr_set(err, "manifest %s: digest mismatch (the content hashes to %s)", want, digest);
	if (dcd && store_digest_valid(dcd) && strcmp(dcd, digest) != 0)
		return qerr_set(err, "manifest %s: Docker-Content-Digest %s does not match the content (%s)", reference,
		                dcd, digest);
	if (dcd && !store_digest_valid(dcd)) {
		autofree char *pd = printable(dcd, 100);
		log_debug("ignoring Docker-Content-Digest \"%s\" (not sha256)", pd);
	}
	return 0;
}

/* GET a manifest and verify it against want (a digest, or NULL for a tag) and the Docker-Content-Digest. */
static int manifest_fetch(struct pull *p, const char *reference, const char *want, struct http_resp *resp,
                          char digest[DIGEST_LEN + 1], struct qerr *err)
{
	if (registry_get_manifest(p->reg, reference, resp, err) < 0)
		return -1;
	if (manifest_check(reference, want, resp, digest, err) < 0) {
		http_resp_free(resp);
		return -1;
	}
	log_info("manifest %s: %s, %zu bytes", reference, digest, resp->body.len);
	return 0;
}

static int resolve_index(struct pull *p, struct index *ix, struct qerr *err)
{
	const struct descriptor *d = index_select(ix, &p->want, err);
	enum manifest_kind kind;
	struct index nested;

	if (!d)
		return qerr_wrap(err, "%s: ", p->refstr);
	if (strcmp(d->media_type, MT_OCI_INDEX) == 0 || strcmp(d->media_type, MT_DOCKER_LIST) == 0)
		return qerr_set(err, "%s: the index entry for %s is itself an index (not supported)", p->refstr,
		                d->digest);
	p->platform.os = xstrdup(d->platform.os);
	p->platform.arch = xstrdup(d->platform.arch);
	p->platform.variant = xstrdup(d->platform.variant);
	if (manifest_fetch(p, d->digest, d->digest, &p->manifest_resp, p->manifest_digest, err) < 0)
		return -1;
	if ((int64_t)p->manifest_resp.body.len != d->size)
		return qerr_set(err, "manifest %s: %zu bytes, the index says %lld", d->digest,
		                p->manifest_resp.body.len, (long long)d->size);
	if (manifest_parse(p->manifest_resp.body.p, p->manifest_resp.body.len, p->manifest_resp.content_type, &kind,
	                   &p->m, &nested, err) < 0)
		return qerr_wrap(err, "%s: ", d->digest);
	if (kind != MANIFEST_IMAGE) {
		index_free(&nested);
		return qerr_set(err, "manifest %s: an index where the index promised an image", d->digest);
	}
	return 0;
}

static int pull_resolve(struct pull *p, struct qerr *err)
{
	const char *reference = p->ref.digest ? p->ref.digest : p->ref.tag;
	char digest[DIGEST_LEN + 1];
	struct http_resp resp;
	enum manifest_kind kind;
	struct index ix;
	int rc;

	if (manifest_fetch(p, reference, p->ref.digest, &resp, digest, err) < 0)
		return -1;
	if (manifest_parse(resp.body.p, resp.body.len, resp.content_type, &kind, &p->m, &ix, err) < 0) {
		http_resp_free(&resp);
		return qerr_wrap(err, "%s: ", p->refstr);
	}
	if (kind == MANIFEST_IMAGE) {
		p->manifest_resp = resp;
		strcpy(p->manifest_digest, digest);
		return 0;
	}
	p->have_index = true;
	p->index_resp = resp;
	strcpy(p->index_digest, digest);
	rc = resolve_index(p, &ix, err);
	index_free(&ix);
	return rc;
}

/* ---- one blob's sink ---- */

static int64_t dl_held(void *ctx)
{
	return ((struct blob_dl *)ctx)->have;
}

static int dl_restart(void *ctx, struct qerr *err)
{
	struct blob_dl *b = ctx;

	if (ftruncate(b->fd, 0) < 0)
		return qerr_sys(err, "blob %s: truncate %s", b->d->digest, b->tmpname);
	digester_reset(b->dg);
	b->have = 0;
	b->resumed = false;
	if (b->p->unp)
		ovl_unpacker_blob_restart(b->p->unp, b->d->digest);
	progress_bytes(b->p->prog, b->prog_id, 0);
	return 0;
}

static int dl_write(void *ctx, const void *data, size_t n, struct qerr *err)
{
	struct blob_dl *b = ctx;
	const char *s = data;
	size_t off = 0;

	if (b->have + (int64_t)n > b->d->size) {
		b->discard = true;
		return qerr_set(err, "blob %s: more than the %lld bytes the manifest says", b->d->digest,
		                (long long)b->d->size);
	}
	while (off < n) {
		ssize_t w = pwrite(b->fd, s + off, n - off, b->have + (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return qerr_sys(err, "blob %s: write %s", b->d->digest, b->tmpname);
		off += (size_t)w;
	}
	digester_update(b->dg, data, n);
	b->have += (int64_t)n;
	progress_bytes(b->p->prog, b->prog_id, b->have);
	return 0;
}

static void dl_release(struct blob_dl *b)
{
	if (b->fd >= 0) {
		if (!b->committed && (b->discard || b->have == 0)) {
			autofree char *rel = xasprintf("tmp/%s", b->tmpname);
			if (unlinkat(b->p->st->rootfd, rel, 0) < 0 && errno != ENOENT)
				log_warn("remove %s/%s: %s", b->p->st->root, rel, strerror(errno));
		}
		close(b->fd);
		b->fd = -1;
	}
	if (b->lock >= 0) {
		close(b->lock);
		b->lock = -1;
	}
	digester_free(b->dg);
	b->dg = NULL;
}

/* Verify what is held and commit it: 0 committed, 1 start over (a resumed prefix did not verify), -1 error. */
static int dl_done(void *ctx, struct qerr *err)
{
	struct blob_dl *b = ctx;
	char got[DIGEST_LEN + 1];

	if (b->have != b->d->size) {
		b->discard = true;
		return qerr_set(err, "blob %s: got %lld bytes, the manifest says %lld", b->d->digest,
		                (long long)b->have, (long long)b->d->size);
	}
	digester_final(b->dg, got);
	if (strcmp(got, b->d->digest) != 0) {
		if (b->resumed && !b->restarted) {
			log_info("blob %s: resumed download does not verify; downloading it again", b->d->digest);
			b->restarted = true;
			return dl_restart(b, err) < 0 ? -1 : 1;
		}
		b->discard = true;
		return qerr_set(err, "blob %s: digest mismatch (the content hashes to %s)", b->d->digest, got);
	}
	if (store_blob_commit(b->p->st, b->fd, b->tmpname, b->d->digest, err) < 0)
		return -1;
	b->committed = true;
	log_info("blob %s: %lld bytes verified and stored", b->d->digest, (long long)b->have);
	progress_state(b->p->prog, b->prog_id, "done");
	dl_release(b);
	if (b->p->unp)
		ovl_unpacker_blob_done(b->p->unp, b->d->digest, true);
	/* The config names the layers: from now on each unpacks while (or as soon as) its blob arrives. */
	if (b->d == &b->p->m.config && (pull_config(b->p, err) < 0 || layers_queue(b->p, err) < 0))
		return -1;
	return 0;
}

/* Open (or reopen, hashing what an earlier run left) tmp/partial-<hex>. */
static int dl_open(struct blob_dl *b, struct qerr *err)
{
	struct store *st = b->p->st;
	autofree char *rel = NULL;
	struct stat sb;

	snprintf(b->tmpname, sizeof(b->tmpname), "partial-%s", store_digest_hex(b->d->digest));
	rel = xasprintf("tmp/%s", b->tmpname);
	b->fd = openat(st->rootfd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (b->fd < 0)
		return qerr_sys(err, "blob %s: open %s/%s", b->d->digest, st->root, rel);
	if (fstat(b->fd, &sb) < 0)
		return qerr_sys(err, "blob %s: stat %s/%s", b->d->digest, st->root, rel);
	if (!S_ISREG(sb.st_mode))
		return qerr_set(err, "blob %s: %s/%s is not a regular file", b->d->digest, st->root, rel);
	b->dg = digester_new();
	if (sb.st_size > b->d->size && ftruncate(b->fd, 0) < 0)
		return qerr_sys(err, "blob %s: truncate %s/%s", b->d->digest, st->root, rel);
	if (sb.st_size > 0 && sb.st_size <= b->d->size) {
		if (digest_fd_prefix(b->dg, b->fd, sb.st_size, err) < 0)
			return qerr_wrap(err, "blob %s: ", b->d->digest);
		b->have = sb.st_size;
		b->resumed = true;
		log_info("blob %s: resuming after %lld of %lld bytes", b->d->digest, (long long)b->have,
		         (long long)b->d->size);
	}
	progress_bytes(b->p->prog, b->prog_id, b->have);
	return 0;
}

/* ---- blobs ---- */

static void blob_set_free(struct blob_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		dl_release(&s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void tick(void *ctx)
{
	struct pull *p = ctx;
	struct qerr ignored = {0};

	progress_draw(p->prog, false);
	if (p->unp)
		ovl_unpacker_poll(p->unp, 0, &ignored); /* a failure comes out of ovl_unpacker_finish */
}

/* Fetch every dl in s that still needs it (a complete partial left by a killed pull only needs verifying). */
static int blobs_fetch(struct pull *p, struct blob_set *s, struct qerr *err)
{
	struct blob_fetch *f = xcalloc(s->n ? s->n : 1, sizeof(*f));
	size_t n = 0;
	int rc = 0;

	p->dls = s;
	if (!p->have_cfg && store_blob_exists(p->st, p->m.config.digest))
		rc = pull_config(p, err) < 0 || layers_queue(p, err) < 0 ? -1 : 0;
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct blob_dl *b = &s->v[i];

		if (b->have == b->d->size && b->resumed) {
			rc = dl_done(b, err);
			if (rc != 1)
				continue;
			rc = 0;
		}
		f[n].digest = b->d->digest;
		f[n].sink = (struct blob_sink){b, dl_held, dl_restart, dl_write, dl_done};
		n++;
	}
	if (rc == 0 && n > 0)
		rc = registry_get_blobs(p->reg, f, n, p->o->max_parallel > 0 ? p->o->max_parallel : PARALLEL_DEFAULT,
		                        tick, p, err);
	p->dls = NULL;
	free(f);
	progress_draw(p->prog, true);
	return rc;
}

enum claim { CLAIM_ERROR = -1, CLAIM_NONE = 0, CLAIM_READY = 1, CLAIM_BUSY = 2 };

/* Take the blob's lock (without waiting when !wait) and open its partial file. CLAIM_NONE: already present. */
static enum claim blob_claim(struct pull *p, struct blob_dl *b, bool wait, struct qerr *err)
{
	b->lock = store_lock_object(p->st, "blob", store_digest_hex(b->d->digest), true, wait, err);
	if (b->lock < 0)
		return !wait && (err->code == EWOULDBLOCK || err->code == EAGAIN) ? CLAIM_BUSY : CLAIM_ERROR;
	if (store_blob_exists(p->st, b->d->digest)) {
		progress_state(p->prog, b->prog_id, "done");
		dl_release(b);
		return CLAIM_NONE;
	}
	return dl_open(b, err) < 0 ? CLAIM_ERROR : CLAIM_READY;
}

static const char *blob_what(const struct pull *p, const struct descriptor *d)
{
	return d == &p->m.config ? "config" : "blob";
}

static void blob_dl_init(struct pull *p, struct blob_dl *b, const struct descriptor *d)
{
	memset(b, 0, sizeof(*b));
	b->p = p;
	b->d = d;
	b->what = blob_what(p, d);
	b->fd = b->lock = -1;
	b->prog_id = progress_add(p->prog, b->what, d->digest, d->size);
}

/* Blobs another pull is fetching: wait for each in turn (one lock at a time), then fetch it if still absent. */
static int blobs_deferred(struct pull *p, const struct descriptor **v, size_t n, struct qerr *err)
{
	for (size_t i = 0; i < n; i++) {
		struct blob_set s = {xcalloc(1, sizeof(struct blob_dl)), 1};
		enum claim c;
		int rc = 0;

		blob_dl_init(p, &s.v[0], v[i]);
		log_info("blob %s: another pull is fetching it; waiting", v[i]->digest);
		c = blob_claim(p, &s.v[0], true, err);
		if (c == CLAIM_ERROR)
			rc = -1;
		else if (c == CLAIM_READY)
			rc = blobs_fetch(p, &s, err);
		blob_set_free(&s);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static bool seen_before(const struct descriptor *const *v, size_t n, const char *digest)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->digest, digest) == 0)
			return true;
	return false;
}

/* The distinct blobs of the image: config first, then layers bottom first. */
static size_t blobs_list(struct pull *p, const struct descriptor **v)
{
	size_t n = 0;

	v[n++] = &p->m.config;
	for (size_t i = 0; i < p->m.nlayers; i++)
		if (!seen_before(v, n, p->m.layers[i].digest))
			v[n++] = &p->m.layers[i];
	return n;
}

static int pull_blobs(struct pull *p, struct qerr *err)
{
	const struct descriptor **all = xcalloc(p->m.nlayers + 1, sizeof(*all)), **later = NULL;
	struct blob_set s = {xcalloc(p->m.nlayers + 1, sizeof(struct blob_dl)), 0};
	size_t n = blobs_list(p, all), nlater = 0;
	int rc = 0;

	later = xcalloc(n, sizeof(*later));
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct blob_dl *b = &s.v[s.n];
		enum claim c;

		if (store_blob_exists(p->st, all[i]->digest)) {
			size_t id = progress_add(p->prog, blob_what(p, all[i]), all[i]->digest, all[i]->size);
			progress_state(p->prog, id, "already exists");
			continue;
		}
		blob_dl_init(p, b, all[i]);
		c = blob_claim(p, b, false, err);
		if (c == CLAIM_BUSY) {
			progress_state(p->prog, b->prog_id, "being fetched by another pull");
			later[nlater++] = all[i];
		}
		if (c == CLAIM_READY || c == CLAIM_ERROR)
			s.n++; /* released by blob_set_free */
		rc = c == CLAIM_ERROR ? -1 : 0;
	}
	progress_draw(p->prog, true);
	if (rc == 0)
		rc = blobs_fetch(p, &s, err);
	blob_set_free(&s);
	if (rc == 0)
		rc = blobs_deferred(p, later, nlater, err);
	free(later);
	free(all);
	return rc;
}

/* ---- config, unpack, publish ---- */

static int pull_config(struct pull *p, struct qerr *err)
{
	size_t len = 0;
	autofree char *data = NULL;

	if (p->have_cfg)
		return 0;
	data = store_blob_read(p->st, p->m.config.digest, CONFIG_MAX, &len, err);
	if (!data)
		return -1;
	if (image_config_parse(data, len, &p->cfg, err) < 0)
		return qerr_wrap(err, "config %s: ", p->m.config.digest);
	if (p->cfg.diff_ids.n != p->m.nlayers)
		return qerr_set(err, "config %s: %zu rootfs.diff_ids for %zu layers", p->m.config.digest,
		                p->cfg.diff_ids.n, p->m.nlayers);
	if (!p->have_index) {
		p->platform = p->cfg.platform;
		memset(&p->cfg.platform, 0, sizeof(p->cfg.platform));
		if (p->platform.os && *p->platform.os && !platform_match(&p->want, &p->platform)) {
			autofree char *have = platform_string(&p->platform), *want = platform_string(&p->want);
			log_warn("image platform (%s) does not match the expected platform (%s)", have, want);
		}
	}
	p->have_cfg = true;
	return 0;
}

/* The blob of a layer being downloaded by this pull right now, if any. */
static const struct blob_dl *downloading(const struct pull *p, const char *digest)
{
	for (size_t i = 0; p->dls && i < p->dls->n; i++) {
		const struct blob_dl *b = &p->dls->v[i];
		if (b->fd >= 0 && !b->committed && strcmp(b->d->digest, digest) == 0)
			return b;
	}
	return NULL;
}

/* Hand every layer whose blob is stored or arriving to the unpacker (the rest are queued once they are). */
static int layers_queue(struct pull *p, struct qerr *err)
{
	size_t n = 0;

	if (!p->unp)
		p->unp = ovl_unpacker_new(p->st, 0, &p->o->limits);
	for (size_t i = 0; i < p->m.nlayers; i++) {
		const struct descriptor *d = &p->m.layers[i];
		const char *diff_id = p->cfg.diff_ids.v[i];
		struct ovl_layer_job job = {d->digest, d->media_type, diff_id, store_digest_hex(diff_id)};
		const struct blob_dl *b = NULL;

		if (!store_blob_exists(p->st, d->digest) && !(b = downloading(p, d->digest)))
			continue;
		if (ovl_unpacker_add(p->unp, &job, b ? b->fd : -1, d->size, err) < 0)
			return -1;
		n++;
	}
	if (n > 0 && !p->layers_queued)
		progress_note(p->prog, "Unpacking layers as they arrive");
	p->layers_queued = p->layers_queued || n > 0;
	return 0;
}

static int pull_unpack(struct pull *p, struct qerr *err)
{
	if (layers_queue(p, err) < 0)
		return -1;
	progress_draw(p->prog, true);
	return ovl_unpacker_finish(p->unp, err);
}

/* Keep bytes we already verified (manifest, index) as a blob. */
static int blob_put(struct store *st, const char *digest, const struct buf *data, struct qerr *err)
{
	char *name = NULL;
	int fd, rc;

	if (store_blob_exists(st, digest))
		return 0;
	fd = store_tmp_file(st, "manifest", &name, err);
	if (fd < 0)
		return -1;
	if (write_all(fd, data->p ? data->p : "", data->len) < 0)
		rc = qerr_sys(err, "store: write %s/tmp/%s", st->root, name);
	else
		rc = store_blob_commit(st, fd, name, digest, err);
	if (rc < 0) {
		autofree char *rel = xasprintf("tmp/%s", name);
		unlinkat(st->rootfd, rel, 0);
	}
	close(fd);
	free(name);
	return rc;
}

static void spec_fill(struct pull *p, struct image_spec *s)
{
	struct image_config *c = &p->cfg;

	memset(s, 0, sizeof(*s));
	s->manifest_digest = xstrdup(p->manifest_digest);
	s->config_digest = xstrdup(p->m.config.digest);
	s->platform = platform_string(&p->platform);
	s->created = c->created ? xstrdup(c->created) : NULL;
	s->size = p->m.config.size;
	for (size_t i = 0; i < p->m.nlayers; i++) {
		s->size += p->m.layers[i].size;
		strv_push(&s->layers, store_digest_hex(c->diff_ids.v[i]));
		strv_push(&s->blobs, p->m.layers[i].digest);
	}
	if (p->have_index)
		strv_push(&s->blobs, p->index_digest);
	for (size_t i = 0; i < c->env.n; i++)
		strv_push(&s->env, c->env.v[i]);
	for (size_t i = 0; i < c->entrypoint.n; i++)
		strv_push(&s->entrypoint, c->entrypoint.v[i]);
	for (size_t i = 0; i < c->cmd.n; i++)
		strv_push(&s->cmd, c->cmd.v[i]);
	s->has_entrypoint = c->has_entrypoint;
	s->has_cmd = c->has_cmd;
	s->workdir = c->workdir ? xstrdup(c->workdir) : NULL;
	s->user = c->user ? xstrdup(c->user) : NULL;
	s->stop_signal = c->stop_signal ? xstrdup(c->stop_signal) : NULL;
}

static int pull_publish(struct pull *p, struct image_spec *spec_out, struct qerr *err)
{
	struct image_spec spec;
	int rc = -1;

	if (blob_put(p->st, p->manifest_digest, &p->manifest_resp.body, err) < 0 ||
	    (p->have_index && blob_put(p->st, p->index_digest, &p->index_resp.body, err) < 0))
		return -1;
	spec_fill(p, &spec);
	if (store_spec_write(p->st, &spec, err) == 0 &&
	    (!p->name || store_ref_set(p->st, p->name, ref_key(&p->ref), p->manifest_digest, err) == 0))
		rc = 0;
	if (rc == 0 && spec_out)
		*spec_out = spec;
	else
		store_spec_free(&spec);
	return rc;
}

/* ---- an image already in the store ---- */

static bool spec_has_blob(const struct image_spec *s, const char *digest)
{
	for (size_t i = 0; i < s->blobs.n; i++)
		if (strcmp(s->blobs.v[i], digest) == 0)
			return true;
	return false;
}

/* The resolved manifest's run spec and every layer are present: point the ref at it (unless it already does)
   and stop there, so a warm pull costs the manifest request and a few stats. 1 = done, 0 = pull it, -1 error. */
static int pull_present(struct pull *p, struct image_spec *spec_out, struct qerr *err)
{
	struct qerr ignored = {0};
	struct image_spec spec;
	autofree char *cur = NULL;
	int rc = 1;

	char map[USERNS_MAP_MAX];
	if (store_spec_read(p->st, p->manifest_digest, &spec, &ignored) < 0)
		return 0;
	if (userns_map(map, err) < 0) {
		store_spec_free(&spec);
		return -1;
	}
	/* A layer unpacked for another id map (the user's range changed) is not present: the pull unpacks it again. */
	for (size_t i = 0; i < spec.layers.n && rc == 1; i++)
		if (!store_layer_current(p->st, spec.layers.v[i], map))
			rc = 0;
	if (rc == 1 && p->have_index && !spec_has_blob(&spec, p->index_digest))
		rc = 0; /* first pulled without this index: write the spec again so gc keeps the index */
	if (rc == 1 && !store_blob_exists(p->st, p->manifest_digest))
		rc = 0;
	if (rc == 1)
		cur = store_ref_get(p->st, p->name, ref_key(&p->ref), &ignored);
	if (rc == 1 && (!cur || strcmp(cur, p->manifest_digest) != 0) &&
	    store_ref_set(p->st, p->name, ref_key(&p->ref), p->manifest_digest, err) < 0)
		rc = -1;
	if (rc == 1 && spec_out)
		*spec_out = spec;
	else
		store_spec_free(&spec);
	if (rc == 1)
		log_info("%s: image %s already present", p->refstr, p->manifest_digest);
	return rc;
}

/* ---- the whole pull ---- */

static int pull_setup(struct pull *p, const struct pull_source *src, struct qerr *err)
{
	if (ref_parse(src->ref, &p->ref, err) < 0)
		return -1;
	p->name = ref_name(&p->ref);
	p->refstr = ref_string(&p->ref);
	if (p->o->platform && *p->o->platform) {
		if (platform_parse(p->o->platform, &p->want, err) < 0)
			return -1;
	} else {
		platform_host(&p->want);
	}
	p->store_lock = store_lock(p->st, false, true, err);
	if (p->store_lock < 0)
		return -1;
	p->prog = progress_new(p->o->progress && !p->o->quiet);
	if (src->mirror)
		progress_note(p->prog, "Trying to pull %s from mirror %s...", p->refstr, src->endpoint.domain);
	else
		progress_note(p->prog, "Trying to pull %s...", p->refstr);
	p->reg = registry_new(&src->endpoint, p->o, err);
	return p->reg ? 0 : -1;
}

static void pull_cleanup(struct pull *p)
{
	if (p->prog)
		progress_draw(p->prog, true);
	ovl_unpacker_free(p->unp);
	progress_free(p->prog);
	registry_free(p->reg);
	image_config_free(&p->cfg);
	manifest_free(&p->m);
	platform_free(&p->platform);
	platform_free(&p->want);
	http_resp_free(&p->manifest_resp);
	http_resp_free(&p->index_resp);
	if (p->store_lock >= 0)
		close(p->store_lock);
	free(p->name);
	free(p->refstr);
	ref_free(&p->ref);
}

/* The blobs are in: config, layers unpacked, refs and spec published; always cleaned up. */
static int pull_finish(struct pull *p, int rc, struct image_spec *spec_out, struct qerr *err)
{
	if (rc == 0)
		rc = pull_config(p, err);
	if (rc == 0)
		rc = pull_unpack(p, err);
	if (rc == 0)
		rc = pull_publish(p, spec_out, err);
	pull_cleanup(p);
	return rc;
}

/* One attempt from one source; *remote: it failed while talking to the source (another may do better). */
static int pull_from(struct store *st, const struct pull_source *src, const struct pull_opts *o,
                     struct image_spec *spec_out, bool *remote, struct qerr *err)
{
	struct pull p = {.st = st, .o = o, .store_lock = -1};
	int rc;

	rc = pull_setup(&p, src, err);
	if (rc == 0)
		rc = pull_resolve(&p, err);
	if (rc == 0)
		rc = pull_present(&p, spec_out, err);
	if (rc == 1) {
		pull_cleanup(&p);
		return 0;
	}
	if (rc == 0)
		rc = pull_blobs(&p, err);
	*remote = rc < 0 && p.reg;
	return pull_finish(&p, rc, spec_out, err);
}

/* The full name of a local image a short name already stands for, or NULL: podman pulls that name again rather
   than resolve the short name anew (so short-name-mode has nothing to ask). */
static char *pull_local_full_name(struct store *st, const struct regconf *conf, const char *ref)
{
	struct strv names = {0};
	char *found = NULL;

	if (!regconf_is_short(ref))
		return NULL;
	regconf_local_names(conf, ref, &names);
	for (size_t i = 0; i < names.n && !found; i++) {
		struct image_ref r;
		struct qerr e;
		autofree char *name = NULL, *digest = NULL;

		if (ref_parse(names.v[i], &r, &e) < 0)
			continue;
		name = ref_name(&r);
		digest = store_ref_get(st, name, ref_key(&r), &e);
		if (digest)
			found = ref_string(&r);
		ref_free(&r);
	}
	strv_free(&names);
	if (found)
		log_info("%s: the local image %s, pulled again by that name", ref, found);
	return found;
}

/* On a terminal, an ambiguous short name is put to the user, as podman does: *picked is the full name chosen. */
static int pull_ask(const struct regconf *conf, const char *ref, const struct pull_opts *o, char **picked,
                    struct qerr *err)
{
	struct strv names = {0};
	int k = 0;

	regconf_candidates(conf, ref, &names);
	if (regconf_ambiguous(conf, ref, &names)) {
		k = o->choose(ref, &names, err);
		if (k >= 0 && (size_t)k < names.n)
			*picked = xstrdup(names.v[k]);
		else if (k >= 0)
			k = qerr_set(err, "%s: no such choice", ref);
	}
	strv_free(&names);
	return k < 0 ? -1 : 0;
}

/* Registries.conf decides where to go: mirrors first, the registry itself on failure (pull/registries.c). */
int pull_image(struct store *st, const char *ref, const struct pull_opts *o, struct image_spec *spec_out,
               struct qerr *err)
{
	static const struct pull_opts defaults;
	struct pull_source *src = NULL;
	struct regconf conf;
	autofree char *local = NULL, *picked = NULL;
	size_t n = 0;
	bool remote = false;
	int rc;

	rc = regconf_load(&conf, err);
	if (rc == 0)
		local = pull_local_full_name(st, &conf, ref);
	if (rc == 0 && !local && o && o->choose)
		rc = pull_ask(&conf, ref, o, &picked, err);
	if (rc == 0)
		rc = regconf_sources(&conf, picked ? picked : local ? local : ref, &src, &n, err);
	regconf_free(&conf);
	for (size_t i = 0; i < n; i++) {
		struct pull_opts oi = o ? *o : defaults;

		oi.tls_verify_off = oi.tls_verify_off || src[i].insecure;
		rc = pull_from(st, &src[i], &oi, spec_out, &remote, err);
		if (rc == 0 || !remote || i + 1 == n)
			break;
		log_warn("%s; trying %s/%s", err->msg, src[i + 1].endpoint.domain, src[i + 1].endpoint.path);
	}
	pull_sources_free(src, n);
	if (rc == 0 && picked) {
		struct qerr e = {0};

		if (regconf_alias_record(ref, picked, &e) < 0)
			log_warn("%s", e.msg);
	}
	return rc;
}

/* The last steps of a pull for an image whose manifest, config and layer blobs are already in the store (qimg
   load): parse the config, unpack the layers, write the run spec. No ref is set: the caller does that, holding
   the store lock shared. index_digest (may be NULL) becomes a gc root; platform (may be NULL) overrides the
   config's; lim (may be NULL) the unpack limits. */
int pull_publish_stored(struct store *st, const char *manifest_digest, const char *index_digest,
                        const struct platform *platform, const struct ovl_unpack_limits *lim,
                        struct image_spec *spec_out, struct qerr *err)
{
	struct pull_opts o = {.limits = lim ? *lim : (struct ovl_unpack_limits){0}};
	struct pull p = {.st = st, .o = &o, .store_lock = -1};
	enum manifest_kind kind;
	struct index ix;
	int rc = -1;

	if (!store_digest_valid(manifest_digest) || (index_digest && !store_digest_valid(index_digest)))
		return qerr_set(err, "publish: invalid digest");
	p.prog = progress_new(false);
	platform_host(&p.want);
	strcpy(p.manifest_digest, manifest_digest);
	p.manifest_resp.body.p = store_blob_read(st, manifest_digest, MANIFEST_MAX, &p.manifest_resp.body.len, err);
	if (p.manifest_resp.body.p &&
	    manifest_parse(p.manifest_resp.body.p, p.manifest_resp.body.len, NULL, &kind, &p.m, &ix, err) == 0) {
		if (kind == MANIFEST_INDEX)
			index_free(&ix);
		rc = kind == MANIFEST_IMAGE ? 0 : qerr_set(err, "manifest %s: an index, not an image", manifest_digest);
	} else if (p.manifest_resp.body.p) {
		qerr_wrap(err, "manifest %s: ", manifest_digest);
	}
	if (rc == 0 && index_digest) {
		p.have_index = true;
		strcpy(p.index_digest, index_digest);
		platform_set(&p.platform, platform ? platform->os : "", platform ? platform->arch : "",
		             platform ? platform->variant : "");
	}
	return pull_finish(&p, rc, spec_out, err);
}
