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

static int list_names(struct store *st, const char *rel, struct strv *out, struct qerr *err)
{
	int fd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : qerr_sys(err, "gc: open %s/%s", st->root, rel);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return qerr_sys(err, "gc: opendir %s/%s", st->root, rel);
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			strv_push(out, e->d_name);
	closedir(d);
	set_sort(out);
	return 0;
}

static time_t mtime_at(struct store *st, const char *rel)
{
	struct stat sb;
	return fstatat(st->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 ? sb.st_mtime : 0;
}

/* Is a live run holding the image's lease? (We can take the lock exclusively only when nobody holds it.) */
static bool image_in_use(struct store *st, const char *hex)
{
	struct qerr ignore;
	int fd = store_lock_object(st, "image", hex, true, false, &ignore);
	if (fd < 0)
		return ignore.code == EWOULDBLOCK;
	close(fd);
	return false;
}

/* ---- the mark phase ---- */

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

static void mark_spec(struct store *st, struct mark *m, const char *hex)
{
	autofree char *digest = xasprintf("sha256:%s", hex);
	struct image_spec spec;
	struct qerr ignore;
	strv_push(&m->specs, hex);
	if (store_spec_read(st, digest, &spec, &ignore) < 0)
		return;
	strv_push(&m->blobs, hex);
	if (spec.config_digest && digest_valid(spec.config_digest))
		strv_push(&m->blobs, digest_hex(spec.config_digest));
	for (size_t i = 0; i < spec.blobs.n; i++)
		if (digest_valid(spec.blobs.v[i]))
			strv_push(&m->blobs, digest_hex(spec.blobs.v[i]));
	for (size_t i = 0; i < spec.layers.n; i++)
		strv_push(&m->layers, spec.layers.v[i]);
	image_spec_free(&spec);
}

/* Kept containers (run --keep NAME) record their image in runs/NAME/image. */
static void mark_kept_runs(struct store *st, struct mark *m)
{
	struct strv runs = {0};
	struct qerr ignore;
	if (list_names(st, "runs", &runs, &ignore) < 0)
		return;
	for (size_t i = 0; i < runs.n; i++) {
		autofree char *rel = xasprintf("runs/%s/image", runs.v[i]);
		autofree char *d = read_file_at(st->rootfd, rel, 256, NULL, &ignore);
		if (!d)
			continue;
		d[strcspn(d, "\n")] = '\0';
		if (digest_valid(d))
			mark_spec(st, m, digest_hex(d));
	}
	strv_free(&runs);
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
	char *trash; /* tmp/gc-PID-RAND, created on first use */
};

static bool old_enough(const struct sweep *sw, time_t mtime)
{
	return sw->o->older_than <= 0 || sw->now - mtime >= sw->o->older_than;
}

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
	return 0;
}

static void unlink_quiet(struct store *st, const char *rel)
{
	(void)unlinkat(st->rootfd, rel, 0);
}

static int sweep_specs(struct sweep *sw, struct mark *m, struct qerr *err)
{
	struct strv specs = {0};
	if (list_names(sw->st, "specs", &specs, err) < 0)
		return -1;
	for (size_t i = 0; i < specs.n; i++) {
		const char *hex = specs.v[i];
		autofree char *rel = xasprintf("specs/%s", hex);
		if (strstr(hex, ".tmp-") || set_has(&m->specs, hex) || !old_enough(sw, mtime_at(sw->st, rel)))
			continue;
		if (image_in_use(sw->st, hex)) {
			mark_spec(sw->st, m, hex);
			set_sort(&m->layers);
			set_sort(&m->blobs);
			continue;
		}
		report(sw->rep, "image", hex, du_at(sw->st->rootfd, rel));
		if (!sw->o->dry_run) {
			unlink_quiet(sw->st, rel);
			autofree char *lock = xasprintf("locks/image-%s.lock", hex);
			unlink_quiet(sw->st, lock);
		}
	}
	strv_free(&specs);
	return 0;
}

static int sweep_layers(struct sweep *sw, const struct mark *m, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, "layers", &names, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < names.n && rc == 0; i++) {
		const char *id = names.v[i];
		size_t n = strlen(id);
		bool meta = n > 5 && !strcmp(id + n - 5, ".json");
		autofree char *base = xstrndup(id, meta ? n - 5 : n);
		autofree char *rel = xasprintf("layers/%s", id);
		if (set_has(&m->layers, base))
			continue;
		if (meta) {
			autofree char *dir = xasprintf("layers/%s", base);
			struct stat sb;
			/* The metadata goes with its dir; an orphan (dir already gone) goes now. */
			if (fstatat(sw->st->rootfd, dir, &sb, AT_SYMLINK_NOFOLLOW) < 0 && !sw->o->dry_run)
				unlink_quiet(sw->st, rel);
			continue;
		}
		autofree char *json = xasprintf("layers/%s.json", id);
		time_t t = mtime_at(sw->st, json);
		if (!old_enough(sw, t ? t : mtime_at(sw->st, rel)))
			continue;
		report(sw->rep, "layer", id, du_at(sw->st->rootfd, rel));
		if (sw->o->dry_run)
			continue;
		rc = to_trash(sw, rel, err);
		unlink_quiet(sw->st, json);
		autofree char *lock = xasprintf("locks/layer-%s.lock", id);
		unlink_quiet(sw->st, lock);
	}
	strv_free(&names);
	return rc;
}

static int sweep_blobs(struct sweep *sw, const struct mark *m, struct qerr *err)
{
	struct strv names = {0};
	if (list_names(sw->st, "blobs/sha256", &names, err) < 0)
		return -1;
	for (size_t i = 0; i < names.n; i++) {
		autofree char *rel = xasprintf("blobs/sha256/%s", names.v[i]);
		if (set_has(&m->blobs, names.v[i]) || !old_enough(sw, mtime_at(sw->st, rel)))
			continue;
		report(sw->rep, "blob", names.v[i], du_at(sw->st->rootfd, rel));
		if (!sw->o->dry_run) {
			unlink_quiet(sw->st, rel);
			autofree char *lock = xasprintf("locks/blob-%s.lock", names.v[i]);
			unlink_quiet(sw->st, lock);
		}
	}
	strv_free(&names);
	return 0;
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
		if (tmp_owner_alive(names.v[i]))
			continue;
		report(sw->rep, "tmp", names.v[i], du_at(sw->st->rootfd, rel));
		if (!sw->o->dry_run)
			rc = to_trash(sw, rel, err);
	}
	strv_free(&names);
	return rc;
}

/* Drop the refs of images not used for --older-than (with --all). */
static void drop_old_refs(struct sweep *sw, struct store_ref *refs, size_t n, bool *dropped)
{
	for (size_t i = 0; i < n; i++) {
		autofree char *rel = xasprintf("specs/%s", digest_hex(refs[i].digest));
		if (!old_enough(sw, mtime_at(sw->st, rel)) || image_in_use(sw->st, digest_hex(refs[i].digest)))
			continue;
		dropped[i] = true;
		strv_push_take(&sw->rep->items, xasprintf("ref %s:%s 0", refs[i].name, refs[i].key));
		if (!sw->o->dry_run) {
			struct qerr ignore;
			(void)store_ref_remove(sw->st, refs[i].name, refs[i].key, &ignore);
		}
	}
}

static int mark_and_sweep(struct sweep *sw, bool sweep_tmp_too, struct qerr *err)
{
	struct mark m = {0};
	struct store_ref *refs;
	size_t n;
	if (store_refs_list(sw->st, &refs, &n, err) < 0)
		return -1;
	bool *dropped = xcalloc(n ? n : 1, sizeof *dropped);
	if (sw->o->all && sw->o->older_than > 0)
		drop_old_refs(sw, refs, n, dropped);
	for (size_t i = 0; i < n; i++)
		if (!dropped[i])
			mark_spec(sw->st, &m, digest_hex(refs[i].digest));
	free(dropped);
	store_refs_free(refs, n);
	mark_kept_runs(sw->st, &m);
	set_sort(&m.specs);
	set_sort(&m.layers);
	set_sort(&m.blobs);
	int rc = sweep_specs(sw, &m, err);
	if (rc == 0)
		rc = sweep_layers(sw, &m, err);
	if (rc == 0)
		rc = sweep_blobs(sw, &m, err);
	if (rc == 0 && sweep_tmp_too)
		rc = sweep_tmp(sw, err);
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

/* --max-size: drop refs least recently used first (never one a live run holds) until the store fits. */
static int evict_lru(struct sweep *sw, struct qerr *err)
{
	for (;;) {
		int64_t used = store_usage(sw->st);
		if (used <= sw->o->max_size)
			return 0;
		struct store_ref *refs;
		size_t n;
		if (store_refs_list(sw->st, &refs, &n, err) < 0)
			return -1;
		ssize_t victim = -1;
		time_t best = 0;
		for (size_t i = 0; i < n; i++) {
			autofree char *rel = xasprintf("specs/%s", digest_hex(refs[i].digest));
			time_t t = mtime_at(sw->st, rel);
			if (image_in_use(sw->st, digest_hex(refs[i].digest)))
				continue;
			if (victim < 0 || t < best) {
				victim = (ssize_t)i;
				best = t;
			}
		}
		if (victim < 0) {
			store_refs_free(refs, n);
			return 0; /* nothing left that may go */
		}
		strv_push_take(&sw->rep->items, xasprintf("ref %s:%s 0", refs[victim].name, refs[victim].key));
		(void)store_ref_remove(sw->st, refs[victim].name, refs[victim].key, err);
		store_refs_free(refs, n);
		struct gc_opts once = *sw->o;
		once.older_than = 0;
		const struct gc_opts *saved = sw->o;
		sw->o = &once;
		int rc = mark_and_sweep(sw, false, err);
		sw->o = saved;
		if (rc < 0)
			return -1;
		if (sw->trash) {
			/* Empty the trash now so the next size reading sees the space freed. */
			if (rm_rf_at(sw->st->rootfd, sw->trash, err) < 0)
				return -1;
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
	if (lock < 0)
		return -1;
	int rc = mark_and_sweep(&sw, true, err);
	if (rc == 0 && o->max_size > 0 && !o->dry_run)
		rc = evict_lru(&sw, err);
	close(lock);
	/* Deleting the trash needs no lock: nothing refers to it any more. */
	if (sw.trash) {
		struct qerr rmerr = {0};
		if (rm_rf_at(st->rootfd, sw.trash, &rmerr) < 0 && rc == 0) {
			*err = rmerr;
			rc = qerr_wrap(err, "gc: ");
		}
		free(sw.trash);
	}
	return rc;
}
