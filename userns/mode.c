/* Which user namespace a rootless qimg enters: the keeper's (the full subuid map) or, for a user without
   subordinate ids or without newuidmap, a single-id one it makes itself (0 -> the user's uid and gid). */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINGLE_NOTICE_FILE "single-id-mode" /* in the store root: the warning was shown */

enum userns_mode { MODE_AUTO, MODE_SUBUID, MODE_SINGLE };

static int mode_parse(const char *v, enum userns_mode *m)
{
	if (!v || !*v || !strcmp(v, "auto"))
		*m = MODE_AUTO;
	else if (!strcmp(v, "subuid"))
		*m = MODE_SUBUID;
	else if (!strcmp(v, "single"))
		*m = MODE_SINGLE;
	else
		return -1;
	return 0;
}

bool userns_mode_valid(const char *mode)
{
	enum userns_mode m;
	return mode_parse(mode, &m) == 0;
}

static int mode_get(enum userns_mode *m, struct qerr *err)
{
	const char *v = getenv(USERNS_ENV);
	if (mode_parse(v, m) < 0)
		return qerr_set(err, "%s=%s: expected auto, subuid or single", USERNS_ENV, v);
	return 0;
}

/* Why the full map cannot be had (a static string), or NULL when it can; -1 on an error reading the range. */
static int full_map_missing(const char **why, struct qerr *err)
{
	struct idmap m;
	struct qerr e = {0};
	*why = NULL;
	if (userns_idmap_get(&m, &e) < 0) {
		if (e.code != ENOENT) {
			*err = e;
			return -1;
		}
		*why = "you have no subordinate uid/gid range (/etc/subuid, /etc/subgid)";
	} else if (!userns_helpers_found()) {
		*why = "newuidmap/newgidmap are not installed";
	}
	return 0;
}

static void single_map(char *map)
{
	snprintf(map, USERNS_MAP_MAX, "u0:%u:1 g0:%u:1", (unsigned)geteuid(), (unsigned)getegid());
}

bool userns_map_single(const char *map)
{
	unsigned u, g, uc, gc;
	int end = 0;
	return map && sscanf(map, "u0:%u:%u g0:%u:%u%n", &u, &uc, &g, &gc, &end) == 4 && !map[end] && uc == 1 &&
	       gc == 1;
}

/* The keeper's namespace fd (full map), or USERNS_KEEPER_NONE for the single-id mode; map filled either way. */
static int userns_pick(char *map, struct qerr *err)
{
	enum userns_mode m;
	if (mode_get(&m, err) < 0)
		return -1;
	if (m == MODE_AUTO) {
		/* A running keeper settles it without reading /etc/subuid: the full map's fast path stays as it was. */
		int fd = userns_keeper_open(false, map, err);
		if (fd != USERNS_KEEPER_NONE)
			return fd;
		const char *why;
		if (full_map_missing(&why, err) < 0)
			return -1;
		m = why ? MODE_SINGLE : MODE_SUBUID;
	}
	if (m == MODE_SINGLE) {
		single_map(map);
		return USERNS_KEEPER_NONE;
	}
	return userns_keeper_open(true, map, err);
}

static int proc_self_write(const char *file, const char *text, struct qerr *err)
{
	autoclose int fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return qerr_sys(err, "single-id mode: write \"%s\" to %s", text, file);
	return 0;
}

/* A user namespace of our own: the user's uid and gid are 0, no other id exists. Written by ourselves, which the
   kernel allows for exactly this map (user_namespaces(7)); setgroups must be denied first. */
static int single_enter(struct qerr *err)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER) < 0)
		return qerr_sys(err,
		                "single-id mode: unshare(CLONE_NEWUSER) (are unprivileged user namespaces enabled?)");
	char line[64];
	if (proc_self_write("/proc/self/setgroups", "deny", err) < 0)
		return -1;
	snprintf(line, sizeof line, "0 %u 1", (unsigned)uid);
	if (proc_self_write("/proc/self/uid_map", line, err) < 0)
		return -1;
	snprintf(line, sizeof line, "0 %u 1", (unsigned)gid);
	return proc_self_write("/proc/self/gid_map", line, err);
}

int userns_join(char *map, struct qerr *err)
{
	char own[USERNS_MAP_MAX];
	if (!map)
		map = own;
	if (geteuid() == 0) {
		snprintf(map, USERNS_MAP_MAX, "%s", USERNS_MAP_HOST);
		return 0;
	}
	int nsfd = userns_pick(map, err);
	if (nsfd == USERNS_KEEPER_NONE)
		return single_enter(err);
	if (nsfd < 0)
		return -1;
	int rc = userns_keeper_join(nsfd, err);
	close(nsfd);
	return rc;
}

int userns_map(char *map, struct qerr *err)
{
	if (geteuid() == 0) {
		snprintf(map, USERNS_MAP_MAX, "%s", USERNS_MAP_HOST);
		return 0;
	}
	int nsfd = userns_pick(map, err);
	if (nsfd >= 0)
		close(nsfd);
	return nsfd == -1 ? -1 : 0;
}

int userns_enter(struct qerr *err)
{
	return userns_join(NULL, err);
}

void userns_notice(struct store *st, const char *map)
{
	if (qlog_level < LOG_NORMAL || !userns_map_single(map))
		return;
	/* One warning per store, not per run: scripts and cron stay quiet. -q runs leave it for the next one. */
	int fd = openat(st->rootfd, SINGLE_NOTICE_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	close(fd);
	/* We may be inside the namespace already (uid 0): the user is the one the map names. */
	enum userns_mode m;
	struct qerr ignored = {0};
	const char *why = "there is no /etc/subuid and /etc/subgid range for you";
	if (mode_get(&m, &ignored) == 0 && m == MODE_SINGLE)
		why = "QIMG_USERNS=single or --userns=single was asked for";
	else if (!userns_helpers_found())
		why = "newuidmap/newgidmap are not installed";
	unsigned uid = 0;
	autofree char *name = NULL;
	if (sscanf(map, "u0:%u:", &uid) == 1)
		(void)passwd_entry((uid_t)uid, &name, NULL);
	log_warn("single-id mode (%s): only your own uid and gid exist in containers, as 0. Image files are all "
	         "owned by you; in a run chown, setuid & co. and mknod of devices succeed without doing anything. For "
	         "the full map ask an administrator for subordinate ids (`usermod --add-subuids 100000-165535 "
	         "--add-subgids 100000-165535 %s`, uidmap package installed). Shown once for the store %s.",
	         why, name ? name : "USER", st->root);
}
