/* Kept containers: `run --keep NAME` writes into runs/NAME/upper, `--from NAME` stacks it as a lower, `rm` removes. */
#include "run_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEPT_NAME_MAX 128

bool run_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KEPT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

static int kept_lock(struct store *st, const char *name, bool exclusive, struct qerr *err)
{
	if (!run_name_valid(name))
		return qerr_set(err, "invalid container name \"%s\" (letters, digits, _ . -)", name);
	int fd = store_lock_object(st, "run", name, exclusive, false, err);
	if (fd < 0 && err->code == EWOULDBLOCK)
		return qerr_set(err, "container %s is in use by another run", name);
	return fd;
}

/* runs/NAME, opened without following a symlink. */
static int kept_dir_open(struct store *st, const char *name, struct qerr *err)
{
	int fd = store_kept_dir(st, name, err);
	if (fd < 0 && err->code == ENOENT)
		return qerr_set(err, "no such container: %s", name);
	return fd;
}

/* runs/NAME/image names the image the container was made from; a container only runs on that image. Only a
   record that does not exist yet is written (create); one that cannot be read is an error, never rewritten. */
static int kept_image_check(struct store *st, int dirfd, const char *name, const char *digest, bool create,
                            struct qerr *err)
{
	struct qerr rerr = {0};
	autofree char *have = NULL;
	int rc = store_kept_image_get(st, name, &have, &rerr);
	if (rc < 0 && rerr.code == EBADMSG)
		return qerr_set(err, "container %s: its record runs/%s/image is damaged; remove it with `qimg rm %s`", name,
		                name, name);
	if (rc < 0)
		return qerr_set(err, "container %s: cannot read its record (%s); remove the container with `qimg rm %s`",
		                name, rerr.msg, name);
	if (rc == 0) {
		struct stat sb;
		if (!create)
			return qerr_set(err, "container %s has no image record (runs/%s/image); remove it with `qimg rm %s`",
			                name, name, name);
		if (fstatat(dirfd, "upper", &sb, AT_SYMLINK_NOFOLLOW) == 0)
			return qerr_set(err, "container %s has lost its image record (runs/%s/image); remove it with "
			                     "`qimg rm %s`",
			                name, name, name);
		return store_kept_image_set(st, name, digest, err);
	}
	if (strcmp(have, digest) != 0)
		return qerr_set(err, "container %s was made from image %s, not %s", name, have, digest);
	return 0;
}

static int kept_from(struct store *st, const struct run_opts *o, struct run_init *in, int *lock, struct qerr *err)
{
	*lock = kept_lock(st, o->from, false, err);
	if (*lock < 0)
		return -1;
	autoclose int dir = kept_dir_open(st, o->from, err);
	if (dir < 0 || kept_image_check(st, dir, o->from, o->spec->manifest_digest, false, err) < 0)
		return -1;
	struct stat sb;
	if (fstatat(dir, "upper", &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
		return qerr_set(err, "container %s has no upper directory", o->from);
	strv_push_take(&in->lowers, xasprintf("runs/%s/upper", o->from));
	return 0;
}

static int kept_keep(struct store *st, const struct run_opts *o, struct run_init *in, int *lock, struct qerr *err)
{
	*lock = kept_lock(st, o->keep, true, err);
	if (*lock < 0)
		return -1;
	autofree char *rel = xasprintf("runs/%s", o->keep);
	if (mkdirat(st->rootfd, rel, 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "create %s/%s", st->root, rel);
	autoclose int dir = kept_dir_open(st, o->keep, err);
	if (dir < 0 || kept_image_check(st, dir, o->keep, o->spec->manifest_digest, true, err) < 0)
		return -1;
	in->upper_fresh = mkdirat(dir, "upper", 0755) == 0;
	if (!in->upper_fresh && errno != EEXIST)
		return qerr_sys(err, "create %s/%s/upper", st->root, rel);
	if (mkdirat(dir, "work", 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "create %s/%s/work", st->root, rel);
	/* Both are handed to the overlay mount by path: they must be the directories, not symlinks to elsewhere. */
	static const char *const sub[] = {"upper", "work"};
	for (size_t i = 0; i < 2; i++) {
		struct stat sb;
		if (fstatat(dir, sub[i], &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
			return qerr_set(err, "container %s: %s/%s/%s is not a directory", o->keep, st->root, rel, sub[i]);
	}
	in->upper = xasprintf("%s/upper", rel);
	in->work = xasprintf("%s/work", rel);
	return 0;
}

int run_kept_prepare(struct store *st, const struct run_opts *o, struct run_init *in, int locks[2], struct qerr *err)
{
	locks[0] = locks[1] = -1;
	if (o->keep && o->from && !strcmp(o->keep, o->from))
		return qerr_set(err, "--keep and --from name the same container %s", o->keep);
	if (o->from && kept_from(st, o, in, &locks[1], err) < 0)
		return -1;
	if (o->keep && kept_keep(st, o, in, &locks[0], err) < 0)
		return -1;
	return 0;
}

int run_kept_remove(struct store *st, const char *name, struct qerr *err)
{
	autoclose int lock = kept_lock(st, name, true, err);
	if (lock < 0)
		return -1;
	autoclose int dir = kept_dir_open(st, name, err);
	if (dir < 0)
		return -1;
	/* Rootless: the container's files belong to subordinate ids, removable only inside the user namespace. */
	if (st->rootless && userns_enter(err) < 0)
		return -1;
	autofree char *rel = xasprintf("runs/%s", name);
	if (rm_rf_at(st->rootfd, rel, err) < 0)
		return qerr_wrap(err, "rm %s: ", name);
	/* Unlinked while held: a run that opened the file before is sent to the new one by store_lock_object. */
	autofree char *lockrel = xasprintf("locks/run-%s.lock", name);
	if (unlinkat(st->rootfd, lockrel, 0) < 0 && errno != ENOENT)
		return qerr_sys(err, "rm %s: remove its lock %s", name, lockrel);
	return 0;
}
