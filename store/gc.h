/* Garbage collection of the store (private to store/ and cmd/). */
#ifndef QIMG_GC_H
#define QIMG_GC_H

#include "store.h"

struct gc_opts {
	bool dry_run;
	int64_t older_than; /* seconds; 0 = any age */
	int64_t max_size;   /* bytes; 0 = no limit */
	bool all;           /* with older_than: also drop image refs not used for that long */
};

struct gc_report {
	size_t images, layers, blobs, tmp;
	int64_t bytes;
	struct strv items; /* "KIND ID BYTES" per object (KIND: image layer blob tmp ref) */
};

/* Mark from refs, kept runs and live runs; sweep the rest. Caller must be able to delete every file (rootless:
   inside the user namespace). */
int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *rep, struct qerr *err);
void gc_report_free(struct gc_report *rep);
/* Bytes used by the store's data dirs. */
int64_t store_usage(struct store *st);
int64_t store_dir_usage(struct store *st, const char *rel);

#endif
