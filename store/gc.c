/* Garbage collection: mark from image refs, kept runs and live runs' leases; move the rest to trash, then delete. */
#include "gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small sets of strings (sorted arrays; stores hold hundreds of objects, not millions) ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_sort(struct strv *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

static bool set_has(const struct strv *s, const char *x)
{
	return s->n && bsearch(&x, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

/* ---- sizes ---- */

/* Bytes used by a file or tree (st_blocks), without following symlinks; unreadable parts are skipped. */
static int64_t du_at(int parent, const char *name)
{
	struct stat sb;
	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	int64_t total = (int64_t)sb.st_blocks * 512;
	if (!S_ISDIR(sb.st_mode))
		return total;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return total;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return total;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			total += du_at(dirfd(d), e->d_name);
	}
	closedir(d);
	return total;
}

/* Sorted names in rel; a missing directory is an empty one (the caller says why that is legitimate). */
static int list_names(struct store *st, const char *rel, struct strv *out, struct qerr *err)
{
	if (store_dir_list(st, rel, out, err) < 0) {
		strv_free(out);
		if (err->code != ENOENT)
			return -1;
	}
	set_sort(out);
	return 0;
}

static int mtime_at(struct store *st, const char *rel, time_t *t, struct qerr *err)
{
	struct stat sb;
	if (fstatat(st->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return qerr_sys(err, "%s: stat", rel);
	*t = sb.st_mtime;
	return 0;
}

/* ---- the mark phase: reads only; any failure stops gc before it removes anything ---- */

struct mark {
	struct strv specs;  /* manifest hex of images to keep */
	struct strv layers; /* layer ids to keep */
	struct strv blobs;  /* blob hex to keep */
};

static void mark_free(struct mark *m)
{
	strv_free(&m->specs);
	strv_free(&m->layers);
	strv_free(&m->blobs);
}

static void mark_sort(struct mark *m)
{
	set_sort(&m->specs);
	set_sort(&m->layers);
	set_sort(&m->blobs);
}

/* A spec that parsed may still name things no pull writes: gc would not know what the image needs. */
static int spec_check(const struct image_spec *s, const char *digest, const char *rel, struct qerr *err)
{
	if (strcmp(s->manifest_digest, digest) != 0)
		return qerr_set(err, "%s: corrupt run spec: it describes image %.80s", rel, s->manifest_digest);
	if (!store_digest_valid(s->config_digest))
		return qerr_set(err, "%s: corrupt run spec: config digest \"%.80s\"", rel,
		                s->config_digest ? s->config_digest : "");
	for (size_t i = 0; i < s->blobs.n; i++)
		if (!store_digest_valid(s->blobs.v[i]))
			return qerr_set(err, "%s: corrupt run spec: blob digest \"%.80s\"", rel, s->blobs.v[i]);
	for (size_t i = 0; i < s->layers.n; i++)
		if (!hex_exact(s->layers.v[i], DIGEST_HEX_LEN))
			return qerr_set(err, "%s: corrupt run spec: layer id \"%.80s\"", rel, s->layers.v[i]);
	return 0;
}

/* Keep image hex: its spec, manifest, config, blobs and layers. why names what keeps it, for the error. */
static int mark_spec(struct store *st, struct mark *m, const char *hex, const char *why, struct qerr *err)
{
	autofree char *digest = xasprintf("sha256:%s", hex);
	autofree char *rel = xasprintf("specs/%s", hex);
	struct image_spec spec;
	if (store_spec_read(st, digest, &spec, err) < 0) {
		/* "store: image DIGEST: " says again what why and the path below it say */
		autofree char *prefix = xasprintf("store: image %s: ", digest);
		size_t n = strlen(prefix);
		autofree char *cause = xstrdup(strncmp(err->msg, prefix, n) ? err->msg : err->msg + n);
		return qerr_set(err, "%s: %s", why, cause);
	}
	int rc = spec_check(&spec, digest, rel, err);
	if (rc < 0) {
		qerr_wrap(err, "%s: ", why);
	} else {
		strv_push(&m->specs, hex);
		strv_push(&m->blobs, hex);
		strv_push(&m->blobs, store_digest_hex(spec.config_digest));
		for (size_t i = 0; i < spec.blobs.n; i++)
			strv_push(&m->blobs, store_digest_hex(spec.blobs.v[i]));
		for (size_t i = 0; i < spec.layers.n; i++)
			strv_push(&m->layers, spec.layers.v[i]);
	}
	store_spec_free(&spec);
	return rc;
}

static char *ref_label(const struct store_ref *r)
{
	return xasprintf("%s%s%s", r->name, store_digest_valid(r->key) ? "@" : ":", r->key);
}

/* A kept container (run --keep NAME) records its image in runs/NAME/image. A record that is not there is
   legitimate: `qimg rm` removes containers without the store lock, and a `run --keep` started before gc took
   the lock writes it after making the directory (its lease, tested before this, keeps the image). */
static int mark_kept_one(struct store *st, struct mark *m, const char *name, struct qerr *err)
{
	autofree char *d = NULL;
	int rc = store_kept_image_get(st, name, &d, err);
	if (rc <= 0)
		return rc == 0 ? 0 : qerr_wrap(err, "kept container %s: ", name);
	autofree char *why = xasprintf("kept container %s", name);
	return mark_spec(st, m, store_digest_hex(d), why, err);
}

static int mark_kept_runs(struct store *st, struct mark *m, struct qerr *err)
{
	struct strv runs = {0};
	/* runs/ missing: no container can have been kept (run --keep makes runs/NAME inside it) */
	int rc = list_names(st, "runs", &runs, err);
	for (size_t i = 0; i < runs.n && rc == 0; i++)
		if (runs.v[i][0] != '.') /* no container name starts with a dot */
			rc = mark_kept_one(st, m, runs.v[i], err);
	strv_free(&runs);
	return rc;
}

/* ---- reporting ---- */

static void report(struct gc_report *rep, const char *kind, const char *id, int64_t bytes)
{
	rep->bytes += bytes;
	if (!strcmp(kind, "image"))
		rep->images++;
	else if (!strcmp(kind, "layer"))
		rep->layers++;
	else if (!strcmp(kind, "blob"))
		rep->blobs++;
	else
		rep->tmp++;
	strv_push_take(&rep->items, xasprintf("%s %s %lld", kind, id, (long long)bytes));
}

void gc_report_free(struct gc_report *rep)
{
	strv_free(&rep->items);
	memset(rep, 0, sizeof *rep);
}

/* ---- the sweep: under the exclusive store lock only renames/unlinks; trees go to a trash dir ---- */

struct sweep {
	struct store *st;
	const struct gc_opts *o;
	struct gc_report *rep;
	time_t now;
	char *trash;  /* tmp/gc-PID-RAND, created on first use */
	bool removed; /* something is gone already: an error can no longer say "nothing was removed" */
};

static bool old_enough(const struct sweep *sw, time_t mtime)
{
	return sw->o->older_than <= 0 || sw->now - mtime >= sw->o->older_than;
}

/* End a message about what stopped gc: what it left, and how to repair. */
static int stopped(const struct sweep *sw, struct qerr *err, const char *hint)
{
	size_t n = strlen(err->msg);
	snprintf(err->msg + n, sizeof err->msg - n, "; nothing %swas removed%s%s%s", sw->removed ? "more " : "",
	         hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	return -1;
}

/* Every object goes by a rename into the trash (files too: one of them may be a directory planted there); gone
   already is fine (nothing but gc removes these, and one gc runs at a time). */
static int to_trash(struct sweep *sw, const char *rel, struct qerr *err)
{
	if (!sw->trash) {
		autofree char *name = NULL;
		int fd = store_tmp_dir(sw->st, "gc", &name, err);
		if (fd < 0)
			return -1;
		close(fd);
		sw->trash = xasprintf("tmp/%s", name);
	}
	char rnd[17];
	random_hex(rnd, 16);
	autofree char *dst = xasprintf("%s/%s", sw->trash, rnd);
	if (renameat(sw->st->rootfd, rel, sw->st->rootfd, dst) < 0 && errno != ENOENT)
		return qerr_sys(err, "gc: move %s to trash", rel);
	sw->removed = true;
	return 0;
}

/* Its lock file goes with an object; one left behind is harmless (a later user recreates it anyway). */
static void unlink_lock(struct store *st, const char *kind, const char *id)
{
	autofree char *lock = xasprintf("locks/%s-%s.lock", kind, id);
	(void)unlinkat(st->rootfd, lock, 0);
}

static int sweep_specs(struct sweep *sw, const struct mark *m, const struct strv *specs, struct qerr *err)
{
	int rc = 0;
	for (size_t i = 0; i < specs->n && rc == 0; i++) {
		const char *hex = specs->v[i];
		autofree char *rel = xasprintf("specs/%s", hex);
		time_t t = 0;
		if (strstr(hex, ".tmp-") || set_has(&m->specs, hex))
			continue;
		/* A spec's lease and age were judged in the mark; a name that is no digest is no image's. */
		if (!hex_exact(hex, DIGEST_HEX_LEN) && (rc = mtime_at(sw->st, rel, &t, err)) == 0 && !old_enough(sw, t))
			continue;
		if (rc < 0)
			break;
		report(sw->rep, "image", hex, du_at(sw->st->rootfd, rel));
		if (!sw->o->dry_run && (rc = to_trash(sw, rel, err)) == 0)
			unlink_lock(sw->st, "image", hex);
	}
	return rc;
}

static int sweep_layers(struct sweep *sw, const struct mark *m, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, "layers", &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		const char *id = names.v[i];
		size_t idlen = strlen(id);
		bool meta = store_layer_sidefile(id, &idlen);
		autofree char *base = xstrndup(id, idlen);
		autofree char *rel = xasprintf("layers/%s", id);
		if (set_has(&m->layers, base))
			continue;
		if (meta) {
			autofree char *dir = xasprintf("layers/%s", base);
			struct stat sb;
			/* Side files go with their dir; an orphan (dir already gone) goes now. */
			if (fstatat(sw->st->rootfd, dir, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
			    !sw->o->dry_run)
				rc = to_trash(sw, rel, err);
			continue;
		}
		/* The completion record's time is the layer's; an incomplete layer (no record) has only its dir's. */
		autofree char *json = xasprintf("layers/%s.json", id);
		time_t t = 0;
		if (mtime_at(sw->st, json, &t, err) < 0 &&
		    (err->code != ENOENT || mtime_at(sw->st, rel, &t, err) < 0)) {
			rc = -1;
			break;
		}
		if (!old_enough(sw, t))
			continue;
		report(sw->rep, "layer", id, du_at(sw->st->rootfd, rel));
		if (sw->o->dry_run)
			continue;
		rc = to_trash(sw, rel, err);
		if (rc == 0)
			rc = to_trash(sw, json, err);
		autofree char *idmap = xasprintf("layers/%s.idmap", id);
		if (rc == 0)
			rc = to_trash(sw, idmap, err);
		unlink_lock(sw->st, "layer", id);
	}
	strv_free(&names);
	return rc;
}

static int sweep_blobs(struct sweep *sw, const struct mark *m, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, "blobs/sha256", &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		autofree char *rel = xasprintf("blobs/sha256/%s", names.v[i]);
		time_t t = 0;
		if (set_has(&m->blobs, names.v[i]))
			continue;
		if ((rc = mtime_at(sw->st, rel, &t, err)) < 0 || !old_enough(sw, t))
			continue;
		report(sw->rep, "blob", names.v[i], du_at(sw->st->rootfd, rel));
		if (!sw->o->dry_run && (rc = to_trash(sw, rel, err)) == 0)
			unlink_lock(sw->st, "blob", names.v[i]);
	}
	strv_free(&names);
	return rc;
}

/* tmp/<what>-<pid>-<rand>: removable once its owner is gone (or it is an older gc's trash). */
static bool tmp_owner_alive(const char *name)
{
	const char *dash = strchr(name, '-');
	if (!dash)
		return false;
	char *end;
	long pid = strtol(dash + 1, &end, 10);
	if (end == dash + 1 || *end != '-' || pid <= 0)
		return false;
	if (pid == (long)getpid())
		return false; /* our own trash from this sweep is handled by the caller */
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* An older gc's trash (it stopped before emptying it): its entries join ours one by one. Moved whole, each
   stopped gc would nest one level deeper, and emptying (a descriptor per level) could need more than it has. */
static int trash_merge(struct sweep *sw, const char *rel, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, rel, &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		autofree char *child = xasprintf("%s/%s", rel, names.v[i]);
		rc = to_trash(sw, child, err);
	}
	strv_free(&names);
	if (rc == 0 && unlinkat(sw->st->rootfd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = qerr_sys(err, "gc: remove %s", rel);
	return rc;
}

static int sweep_tmp(struct sweep *sw, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, "tmp", &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		autofree char *rel = xasprintf("tmp/%s", names.v[i]);
		if (sw->trash && !strcmp(rel, sw->trash))
			continue;
		if (tmp_owner_alive(names.v[i]) || !strncmp(names.v[i], STORE_TMP_STALE, strlen(STORE_TMP_STALE)))
			continue; /* stale layers: stale_remove(), after the lock */
		report(sw->rep, "tmp", names.v[i], du_at(sw->st->rootfd, rel));
		if (sw->o->dry_run)
			continue;
		rc = strncmp(names.v[i], "gc-", 3) ? to_trash(sw, rel, err) : trash_merge(sw, rel, err);
	}
	strv_free(&names);
	return rc;
}

/* tmp/stale-*: layers unpacked for an id map the user no longer has, moved aside by the pull that unpacked them
   again (overlay/unpack.c). Their files may belong to ids outside the current map, which nobody but root can
   remove: such a tree is reported once per gc with what to do, and gc carries on. */
static int stale_remove(struct store *st, const struct gc_opts *o, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(st, "tmp", &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		if (strncmp(names.v[i], STORE_TMP_STALE, strlen(STORE_TMP_STALE)) != 0 || tmp_owner_alive(names.v[i]) || o->dry_run)
			continue;
		autofree char *rel = xasprintf("tmp/%s", names.v[i]);
		struct qerr rmerr = {0};
		if (rm_rf_at(st->rootfd, rel, &rmerr) == 0)
			continue;
		if (rmerr.code == EPERM || rmerr.code == EACCES)
			log_warn("gc: %s/%s holds files owned by ids outside your id map (a layer unpacked before your "
			         "/etc/subuid or /etc/subgid range changed): an administrator can remove it",
			         st->root, rel);
		else
			rc = qerr_set(err, "gc: remove %s: %s", rel, rmerr.msg);
	}
	strv_free(&names);
	return rc;
}

/* --all --older-than: which refs name images neither used for that long nor held by a live run. */
static int refs_to_drop(struct sweep *sw, const struct store_ref *refs, size_t n, bool *drop, struct qerr *err)
{
	for (size_t i = 0; i < n && sw->o->all && sw->o->older_than > 0; i++) {
		autofree char *rel = xasprintf("specs/%s", store_digest_hex(refs[i].digest));
		autofree char *label = ref_label(&refs[i]);
		time_t t = 0;
		int held = 0;
		if (mtime_at(sw->st, rel, &t, err) < 0 ||
		    (old_enough(sw, t) && (held = store_image_lease_held(sw->st, store_digest_hex(refs[i].digest), err)) < 0))
			return qerr_wrap(err, "image %s: ", label);
		drop[i] = old_enough(sw, t) && !held;
	}
	return 0;
}

/* Everything the store must keep, read before anything is removed. Under the exclusive store lock no pull
   writes and no run takes a new lease; rmi and rm (which take no store lock) only remove, so what they removed
   meanwhile (ENOENT) is absent, not an error. Leases are tested before kept records: a run that held its lease
   when tested keeps its image, and one that had ended by then had written its runs/NAME/image before. */
static int mark(struct sweep *sw, struct mark *m, const struct store_ref *refs, size_t n, const bool *drop,
                const struct strv *specs, struct qerr *err)
{
	for (size_t i = 0; i < n; i++) {
		autofree char *label = ref_label(&refs[i]), *why = xasprintf("image %s", label);
		autofree char *hint =
		    xasprintf("qimg pull %s again rewrites its run spec; qimg system check lists every "
		              "image whose spec is damaged",
		              label);
		if (!drop[i] && mark_spec(sw->st, m, store_digest_hex(refs[i].digest), why, err) < 0)
			return stopped(sw, err, hint);
	}
	set_sort(&m->specs);
	struct strv held = {0}, young = {0};
	int rc = 0;
	for (size_t i = 0; i < specs->n && rc == 0; i++) {
		const char *hex = specs->v[i];
		autofree char *rel = xasprintf("specs/%s", hex);
		time_t t = 0;
		int h;
		if (!hex_exact(hex, DIGEST_HEX_LEN) || set_has(&m->specs, hex))
			continue;
		if ((h = store_image_lease_held(sw->st, hex, err)) < 0) {
			rc = stopped(sw, err, "delete that lock file if no run of the image is live");
		} else if (h) {
			strv_push(&held, hex);
		} else if (mtime_at(sw->st, rel, &t, err) < 0) {
			rc = stopped(sw, err, NULL);
		} else if (!old_enough(sw, t)) {
			strv_push(&young, hex);
		}
	}
	for (size_t i = 0; i < held.n && rc == 0; i++)
		if (mark_spec(sw->st, m, held.v[i], "image in use by a live run", err) < 0)
			rc = stopped(sw, err, "run again once that image's runs have ended");
	for (size_t i = 0; i < young.n && rc == 0; i++)
		if (mark_spec(sw->st, m, young.v[i], "image used within --older-than", err) < 0)
			rc = stopped(sw, err, "no ref names it: deleting that spec file is safe");
	strv_free(&held);
	strv_free(&young);
	if (rc == 0 && mark_kept_runs(sw->st, m, err) < 0)
		rc = stopped(sw, err,
		             "qimg rm NAME removes that kept container; qimg pull its image again rewrites a "
		             "damaged spec");
	mark_sort(m);
	return rc;
}

/* Drop the refs chosen by refs_to_drop; one that cannot go stops gc before its image's objects would. */
static int sweep_refs(struct sweep *sw, const struct store_ref *refs, size_t n, const bool *drop, struct qerr *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!drop[i])
			continue;
		autofree char *label = ref_label(&refs[i]);
		strv_push_take(&sw->rep->items, xasprintf("ref %s 0", label));
		if (sw->o->dry_run)
			continue;
		if (store_ref_remove(sw->st, refs[i].name, refs[i].key, err) < 0) {
			qerr_wrap(err, "gc: drop unused image %s: ", label);
			return stopped(sw, err, NULL);
		}
		sw->removed = true;
	}
	return 0;
}

static int mark_and_sweep(struct sweep *sw, bool sweep_tmp_too, struct qerr *err)
{
	struct mark m = {0};
	struct strv specs = {0};
	struct store_ref *refs;
	size_t n;
	if (store_refs_list_strict(sw->st, &refs, &n, err) < 0) {
		qerr_wrap(err, "gc: ");
		return stopped(sw, err, "qimg pull that image again rewrites its ref");
	}
	bool *drop = xcalloc(n ? n : 1, sizeof *drop);
	int rc = refs_to_drop(sw, refs, n, drop, err);
	if (rc < 0)
		stopped(sw, err, NULL);
	if (rc == 0 && (rc = list_names(sw->st, "specs", &specs, err)) < 0)
		stopped(sw, err, NULL);
	if (rc == 0)
		rc = mark(sw, &m, refs, n, drop, &specs, err);
	if (rc == 0)
		rc = sweep_refs(sw, refs, n, drop, err);
	if (rc == 0)
		rc = sweep_specs(sw, &m, &specs, err);
	if (rc == 0)
		rc = sweep_layers(sw, &m, err);
	if (rc == 0)
		rc = sweep_blobs(sw, &m, err);
	if (rc == 0 && sweep_tmp_too)
		rc = sweep_tmp(sw, err);
	if (rc < 0 && strncmp(err->msg, "gc: ", 4) != 0)
		qerr_wrap(err, "gc: ");
	free(drop);
	store_refs_free(refs, n);
	strv_free(&specs);
	mark_free(&m);
	return rc;
}

int64_t store_dir_usage(struct store *st, const char *rel)
{
	return du_at(st->rootfd, rel);
}

int64_t store_usage(struct store *st)
{
	static const char *const parts[] = {"blobs", "layers", "specs", "runs", "tmp", NULL};
	int64_t total = 0;
	for (const char *const *p = parts; *p; p++)
		total += du_at(st->rootfd, *p);
	return total;
}

/* The least recently used ref no live run holds: its index, -1 when none may go, -2 on error. */
static ssize_t lru_victim(struct sweep *sw, const struct store_ref *refs, size_t n, struct qerr *err)
{
	ssize_t victim = -1;
	time_t best = 0;
	for (size_t i = 0; i < n; i++) {
		autofree char *rel = xasprintf("specs/%s", store_digest_hex(refs[i].digest));
		time_t t = 0;
		int held =
		    mtime_at(sw->st, rel, &t, err) < 0 ? -1 : store_image_lease_held(sw->st, store_digest_hex(refs[i].digest), err);
		if (held < 0) {
			autofree char *label = ref_label(&refs[i]);
			qerr_wrap(err, "gc: --max-size: image %s: ", label);
			stopped(sw, err, NULL);
			return -2;
		}
		if (!held && (victim < 0 || t < best)) {
			victim = (ssize_t)i;
			best = t;
		}
	}
	return victim;
}

/* --max-size: drop refs least recently used first (never one a live run holds) until the store fits. Each
   round removes one ref or stops: a ref that cannot be removed is an error, never chosen again. */
static int evict_lru(struct sweep *sw, struct qerr *err)
{
	for (;;) {
		if (store_usage(sw->st) <= sw->o->max_size)
			return 0;
		struct store_ref *refs;
		size_t n;
		if (store_refs_list_strict(sw->st, &refs, &n, err) < 0) {
			qerr_wrap(err, "gc: ");
			return stopped(sw, err, "qimg pull that image again rewrites its ref");
		}
		ssize_t victim = lru_victim(sw, refs, n, err);
		int rc = victim == -2 ? -1 : 0;
		if (victim >= 0) {
			autofree char *label = ref_label(&refs[victim]);
			if (store_ref_remove(sw->st, refs[victim].name, refs[victim].key, err) < 0) {
				qerr_wrap(err, "gc: --max-size: drop least recently used image %s: ", label);
				rc = stopped(sw, err, "the store is still larger than --max-size");
			} else {
				sw->removed = true;
				strv_push_take(&sw->rep->items, xasprintf("ref %s 0", label));
			}
		}
		store_refs_free(refs, n);
		if (rc < 0)
			return -1;
		if (victim < 0)
			return 0; /* nothing left that may go */
		struct gc_opts once = *sw->o;
		once.older_than = 0;
		once.all = false;
		const struct gc_opts *saved = sw->o;
		sw->o = &once;
		rc = mark_and_sweep(sw, false, err);
		sw->o = saved;
		if (rc < 0)
			return -1;
		if (sw->trash) {
			/* Empty the trash now so the next size reading sees the space freed. */
			if (rm_rf_at(sw->st->rootfd, sw->trash, err) < 0)
				return qerr_wrap(err, "gc: empty %s: ", sw->trash);
			free(sw->trash);
			sw->trash = NULL;
		}
	}
}

int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *rep, struct qerr *err)
{
	memset(rep, 0, sizeof *rep);
	struct sweep sw = {.st = st, .o = o, .rep = rep, .now = time(NULL)};
	/* Pulls hold the store lock shared for their whole life, runs only while they take their lease: gc waits
	   for pulls to finish, and a run waits at most for the renames below. */
	int lock = store_lock(st, true, true, err);
	if (lock < 0) {
		qerr_wrap(err, "gc: ");
		return stopped(&sw, err, NULL);
	}
	int rc = mark_and_sweep(&sw, true, err);
	if (rc == 0 && o->max_size > 0 && !o->dry_run)
		rc = evict_lru(&sw, err);
	close(lock);
	/* Deleting the trash needs no lock: nothing refers to it any more. */
	if (sw.trash) {
		struct qerr rmerr = {0};
		if (rm_rf_at(st->rootfd, sw.trash, &rmerr) < 0 && rc == 0) {
			*err = rmerr; /* what is in there was proven unused; the next gc empties it */
			rc = qerr_wrap(err, "gc: empty %s: ", sw.trash);
		}
		free(sw.trash);
	}
	if (rc == 0)
		rc = stale_remove(st, o, err);
	return rc;
}
