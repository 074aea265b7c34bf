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

/* runs/NAME/image names the image the container was made from; a container only runs on that image. */
static int kept_image_check(struct store *st, const char *name, const char *digest, bool create, struct qerr *err)
{
	autofree char *rel = xasprintf("runs/%s/image", name);
	struct qerr rerr;
	autofree char *have = read_file_at(st->rootfd, rel, 256, NULL, &rerr);
	if (!have) {
		if (!create)
			return qerr_set(err, "no such container: %s", name);
		autofree char *line = xasprintf("%s\n", digest);
		return write_file_atomic_at(st->rootfd, rel, line, strlen(line), 0644, true, err);
	}
	have[strcspn(have, "\n")] = '\0';
	if (strcmp(have, digest) != 0)
		return qerr_set(err, "container %s was made from image %s, not %s", name, have, digest);
	return 0;
}

static int kept_from(struct store *st, const struct run_opts *o, struct run_init *in, int *lock, struct qerr *err)
{
	*lock = kept_lock(st, o->from, false, err);
	if (*lock < 0 || kept_image_check(st, o->from, o->spec->manifest_digest, false, err) < 0)
		return -1;
	autofree char *upper = xasprintf("runs/%s/upper", o->from);
	struct stat sb;
	if (fstatat(st->rootfd, upper, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
		return qerr_set(err, "container %s has no upper directory", o->from);
	strv_push(&in->lowers, upper);
	return 0;
}

static int kept_keep(struct store *st, const struct run_opts *o, struct run_init *in, int *lock, struct qerr *err)
{
	*lock = kept_lock(st, o->keep, true, err);
	if (*lock < 0)
		return -1;
	autofree char *dir = xasprintf("runs/%s", o->keep);
	if (mkdirat(st->rootfd, dir, 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "create %s/%s", st->root, dir);
	if (kept_image_check(st, o->keep, o->spec->manifest_digest, true, err) < 0)
		return -1;
	in->upper = xasprintf("%s/upper", dir);
	in->work = xasprintf("%s/work", dir);
	in->upper_fresh = mkdirat(st->rootfd, in->upper, 0755) == 0;
	if (!in->upper_fresh && errno != EEXIST)
		return qerr_sys(err, "create %s/%s", st->root, in->upper);
	if (mkdirat(st->rootfd, in->work, 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "create %s/%s", st->root, in->work);
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
	autofree char *dir = xasprintf("runs/%s", name);
	struct stat sb;
	if (fstatat(st->rootfd, dir, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
		return qerr_set(err, "no such container: %s", name);
	/* Rootless: the container's files belong to subordinate ids, removable only inside the user namespace. */
	if (st->rootless && run_userns_enter(err) < 0)
		return -1;
	if (rm_rf_at(st->rootfd, dir, err) < 0)
		return qerr_wrap(err, "rm %s: ", name);
	autofree char *lockrel = xasprintf("locks/run-%s.lock", name);
	(void)unlinkat(st->rootfd, lockrel, 0);
	return 0;
}
