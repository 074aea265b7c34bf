/* The runner: id mapping (subuid ranges, newuidmap), the per-user keeper, namespaces, PID 1, exec. */
#ifndef QIMG_RUN_H
#define QIMG_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include "../store/store.h"
#include "../overlay/overlay.h"

/* ---- id mapping and the keeper (run/idmap.c, run/keeper.c) ---- */

struct idmap_range {
	uint32_t inside, outside, count;
};
struct idmap {
	struct idmap_range uid[2], gid[2]; /* [0] = 0 -> caller, [1] = 1.. -> subuid range */
	int nuid, ngid;
};
/* The caller's mapping: 0 -> own uid/gid, 1..N -> first /etc/subuid and /etc/subgid range of the user.
   Clear error naming the missing entry. As root: the identity map of all ids. */
int run_idmap_get(struct idmap *m, struct qerr *err);
/* One-line text form, e.g. "u0:1000:1,1:100000:65536 g0:1000:1,1:100000:65536" (caller frees). */
char *run_idmap_string(const struct idmap *m);

/* Enter the per-user keeper's user namespace (creating the keeper with newuidmap/newgidmap when it is missing or
   dead). The caller must be single-threaded. As root this is a no-op returning 0. */
int run_userns_enter(struct qerr *err);

/* ---- the runner (run/run.c) ---- */
/* struct run_opts and run_container() are defined below by the runner. */

