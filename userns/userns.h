/* The user-namespace service, below both overlay/ (unpack and export work inside the namespace) and run/:
   the caller's id map (subuid ranges), the mode (full map or single id), the per-user keeper that holds the
   full-map namespace, and userns_call(), which runs a function in a child inside the namespace and brings its
   error back. Uses lib/ and store/ only. */
#ifndef QIMG_USERNS_H
#define QIMG_USERNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "../store/store.h"
/* ---- id mapping (userns/idmap.c) ---- */
struct idmap_range {
	uint32_t inside, outside, count;
};
struct idmap {
	struct idmap_range uid[2], gid[2]; /* [0] = 0 -> caller, [1] = 1.. -> subuid range */
	int nuid, ngid;
};
/* The caller's mapping: 0 -> own uid/gid, 1..N -> first /etc/subuid and /etc/subgid range of the user.
   Clear error naming the missing entry. As root: the identity map of all ids. */
int userns_idmap_get(struct idmap *m, struct qerr *err);
/* One-line text form, e.g. "u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536" (caller frees). */
char *userns_idmap_string(const struct idmap *m);

/* Which user namespace a rootless process enters (userns/mode.c): QIMG_USERNS=subuid the keeper's (the full
   subuid map), =single one of its own mapping only the user's uid and gid to 0 (no setuid helper; the run
   emulates the calls that need other ids), unset or =auto the full map when the user has a subordinate uid and
   gid range and newuidmap/newgidmap are installed (or a keeper is running), else single. Root: the host's ids. */
#define USERNS_ENV "QIMG_USERNS"
/* A valid QIMG_USERNS / --userns value. */
bool userns_mode_valid(const char *mode);
/* map (userns_idmap_string's form) is the single-id mode's: one uid and one gid, mapped to 0. */
bool userns_map_single(const char *map);
/* Once per store (a marker file in its root), unless -q: when map is the single-id mode's, say what is emulated
   and how to get the full map. */
void userns_notice(struct store *st, const char *map);

/* Enter the per-user keeper's user namespace (creating the keeper with newuidmap/newgidmap when it is missing or
   dead). The caller must be single-threaded. As root this is a no-op returning 0. */
int userns_enter(struct qerr *err);
/* The same, and the uid/gid map of the namespace joined, in userns_idmap_string's form, copied into map
   (USERNS_MAP_MAX bytes): what a layer unpacked there is owned as. As root: USERNS_MAP_HOST. */
#define USERNS_MAP_MAX  256
#define USERNS_MAP_HOST "u0:0:4294967295 g0:0:4294967295"
int userns_join(char *map, struct qerr *err);
/* Only the map (the keeper started if needed), without joining: for a process that must stay outside. */
int userns_map(char *map, struct qerr *err);
/* The keeper (userns/keeper.c): its namespace's fd and map, started first when create is set; without create
   USERNS_KEEPER_NONE when none is running. -1 with err. */
#define USERNS_KEEPER_NONE (-2)
int userns_keeper_open(bool create, char *map, struct qerr *err);
int userns_keeper_join(int nsfd, struct qerr *err);
/* newuidmap and newgidmap are found ($PATH, then /usr/bin:/bin:/usr/sbin:/sbin). */
bool userns_helpers_found(void);

/* Find id's first range in /etc/subuid-format text (by user name or numeric id). 0 found, -1 not. */
int userns_subid_find(const char *text, const char *name, uint32_t id, uint32_t *start, uint32_t *count);

/* `qimg system keeper status|stop`. */
struct userns_keeper_info {
	char *dir;       /* where the record lives */
	bool running;
	pid_t pid;
	uint64_t ns_inode;
	uint64_t rss_kb;
	char *uid_map;   /* the keeper's /proc/PID/uid_map, may be NULL */
};
int userns_keeper_status(struct userns_keeper_info *ki, struct qerr *err);
void userns_keeper_info_free(struct userns_keeper_info *ki);
/* Stop the keeper (SIGTERM) and forget it; runs already started keep their namespace. */
int userns_keeper_stop(bool *was_running, struct qerr *err);

/* Run fn(arg, err) in a forked child that has joined the user namespace (rootless: the keeper's, see
   userns_enter; as root: the child only), and wait for it. fn's error message comes back into err; a child
   killed or exiting without a message is an error naming what. 0 when fn returned 0. what names the work in
   those messages ("export"). */
int userns_call(bool rootless, const char *what, int (*fn)(void *arg, struct qerr *err), void *arg,
                struct qerr *err);

#endif
