/* Layer tarballs -> overlay lower dirs: decompress, verify the diffID, extract securely; one process per layer. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>
#ifdef QIMG_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "../userns/userns.h"
#include "../store/digest.h"
#include "internal.h"
#include "overlay.h"

/* Blocks of 512 KiB: 50x libarchive's default, and small enough that a worker's buffers (ring included, ~3 MiB)
   cost few page faults: 12 layers with 2 MiB blocks took 28,000 faults and 2.9 s of CPU, with 512 KiB 11,800
   and 2.3 s (a VM where a fault is dear). */
#define IN_BLOCK      ((size_t)512 << 10) /* compressed bytes read from the blob at once */
#define OUT_BLOCK     ((size_t)512 << 10) /* uncompressed bytes handed to libarchive at once */
#define RATIO_FLOOR   ((int64_t)1 << 20)
#define MAX_COMPS     (PATH_MAX / 2 + 1)
#define LABEL_LEN     12
#define WRITEBACK_MIN ((int64_t)64 << 10) /* files this big start their writeback as soon as written */

/* ======================================================================================================
 * The uncompressed stream: blob fd -> decompressor -> sha256 + limits -> libarchive (as its read callback)
 * ====================================================================================================== */

enum codec { CODEC_NONE, CODEC_GZIP, CODEC_ZSTD };

struct ustream {
	int fd;
	int64_t want; /* > 0: the blob is still being written (downloaded) and will have this many bytes */
	int notify;   /* inotify fd watching it, or -1 (then it is polled) */
	enum codec codec;
	const char *label;
	unsigned char *in, *out;
	size_t in_len, in_pos; /* bytes buffered in `in`, bytes of them consumed */
	bool in_eof;           /* the blob is read to its end */
	bool done;             /* the uncompressed stream has ended */
	bool failed;           /* err holds the reason */
	int64_t in_total, out_total;
	struct ovl_unpack_limits lim;
	struct digester *md;
#ifdef QIMG_HAVE_ISAL
	struct inflate_state *gz;
#else
	struct archive *gz; /* without ISA-L: libarchive's raw format + gzip filter (zlib) */
#endif
	ZSTD_DStream *zs;
	size_t zlast; /* last ZSTD_decompressStream() hint: 0 = at a frame boundary */
	struct qerr *err;
};

static int us_fail(struct ustream *s, const char *fmt, const char *detail)
{
	s->failed = true;
	return qerr_set(s->err, "unpack %s: %s%s%s", s->label, fmt, detail ? ": " : "", detail ? detail : "");
}

/* A growing blob has no more bytes yet: wait until it is written to (the pull kills us if it never is), then a
   millisecond more so a fast download is read in large pieces rather than one wakeup per network write. */
static int us_wait(struct ustream *s)
{
	struct timespec batch = {0, 1000000};
	if (s->notify >= 0) {
		struct pollfd pf = {.fd = s->notify, .events = POLLIN};
		if (poll(&pf, 1, 100) < 0 && errno != EINTR)
			return us_fail(s, "wait for the download", strerror(errno));
		char ev[4096];
		while (read(s->notify, ev, sizeof ev) > 0)
			;
	}
	nanosleep(&batch, NULL);
	return 0;
}

/* Read more of the blob after the unconsumed bytes (moved to the front). */
static int us_fill(struct ustream *s)
{
	if (s->in_pos > 0) {
		memmove(s->in, s->in + s->in_pos, s->in_len - s->in_pos);
		s->in_len -= s->in_pos;
		s->in_pos = 0;
	}
	while (!s->in_eof && s->in_len < IN_BLOCK) {
		size_t room = IN_BLOCK - s->in_len;
		if (s->want > 0 && (int64_t)room > s->want - s->in_total)
			room = (size_t)(s->want - s->in_total);
		ssize_t n = room ? pread(s->fd, s->in + s->in_len, room, s->in_total) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return us_fail(s, "read blob", strerror(errno));
		if (n == 0 && s->want > 0 && s->in_total < s->want) {
			if (us_wait(s) < 0)
				return -1;
			continue;
		}
		if (n == 0)
			s->in_eof = true;
		s->in_len += (size_t)n;
		s->in_total += n;
		break;
	}
	return 0;
}

static ssize_t raw_next(struct ustream *s, const void **buf)
{
	if (s->in_pos == s->in_len && us_fill(s) < 0)
		return -1;
	*buf = s->in + s->in_pos;
	size_t n = s->in_len - s->in_pos;
	s->in_pos = s->in_len;
	return (ssize_t)n;
}

#ifdef QIMG_HAVE_ISAL
/* After one gzip member: another member follows (1), the blob ends, possibly in zero padding (0), or error. */
static int gz_more_members(struct ustream *s)
{
	if (s->in_len - s->in_pos < 2 && !s->in_eof && us_fill(s) < 0)
		return -1;
	if (s->in_pos == s->in_len)
		return 0;
	if (s->in_len - s->in_pos >= 2 && s->in[s->in_pos] == 0x1f && s->in[s->in_pos + 1] == 0x8b)
		return 1;
	for (;;) { /* gzip(1) accepts trailing zeros; anything else is garbage */
		for (; s->in_pos < s->in_len; s->in_pos++)
			if (s->in[s->in_pos] != 0)
				return us_fail(s, "gzip: trailing garbage after the compressed data", NULL);
		if (s->in_eof)
			return 0;
		if (us_fill(s) < 0)
			return -1;
	}
}

static int gz_init(struct ustream *s)
{
	s->gz = xmalloc(sizeof *s->gz);
	isal_inflate_init(s->gz);
	s->gz->crc_flag = ISAL_GZIP;
	return 0;
}

static void gz_free(struct ustream *s)
{
	free(s->gz);
}

static ssize_t gz_next(struct ustream *s, const void **buf)
{
	struct inflate_state *z = s->gz;
	z->next_out = s->out;
	z->avail_out = OUT_BLOCK;
	while (z->avail_out > 0) {
		if (z->block_state == ISAL_BLOCK_FINISH) {
			int more = gz_more_members(s);
			if (more < 0)
				return -1;
			if (more == 0)
				break;
			isal_inflate_reset(z);
			z->crc_flag = ISAL_GZIP;
		}
		if (s->in_pos == s->in_len && !s->in_eof && us_fill(s) < 0)
			return -1;
		bool at_end = s->in_pos == s->in_len && s->in_eof;
		uint32_t before = z->avail_out;
		z->next_in = s->in + s->in_pos;
		z->avail_in = (uint32_t)(s->in_len - s->in_pos);
		int r = isal_inflate(z);
		s->in_pos = s->in_len - z->avail_in;
		if (r < 0) {
			char why[32];
			snprintf(why, sizeof why, "ISA-L error %d", r);
			return us_fail(s, "gzip: corrupt compressed data", why);
		}
		if (at_end && z->avail_out == before && z->block_state != ISAL_BLOCK_FINISH)
			return us_fail(s, "gzip: compressed data is truncated", NULL);
	}
	*buf = s->out;
	return (ssize_t)(OUT_BLOCK - z->avail_out);
}
#else
static la_ssize_t gz_read_cb(struct archive *a, void *client, const void **buf)
{
	struct ustream *s = client;
	(void)a;
	return raw_next(s, buf);
}

static int gz_init(struct ustream *s)
{
	struct archive_entry *e;
	s->gz = archive_read_new();
	if (!s->gz || archive_read_support_format_raw(s->gz) != ARCHIVE_OK ||
	    archive_read_append_filter(s->gz, ARCHIVE_FILTER_GZIP) != ARCHIVE_OK ||
	    archive_read_open(s->gz, s, NULL, gz_read_cb, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(s->gz, &e) != ARCHIVE_OK) {
		if (!s->failed)
			us_fail(s, "gzip", s->gz ? ovl_archive_error(s->gz) : "out of memory");
		return -1;
	}
	return 0;
}

static void gz_free(struct ustream *s)
{
	if (s->gz)
		archive_read_free(s->gz);
}

static ssize_t gz_next(struct ustream *s, const void **buf)
{
	size_t size;
	la_int64_t off;
	int r = archive_read_data_block(s->gz, buf, &size, &off);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK) {
		if (!s->failed)
			us_fail(s, "gzip", ovl_archive_error(s->gz));
		return -1;
	}
	return (ssize_t)size;
}
#endif

static ssize_t zs_next(struct ustream *s, const void **buf)
{
	ZSTD_outBuffer ob = {s->out, OUT_BLOCK, 0};
	while (ob.pos < ob.size) {
		if (s->in_pos == s->in_len && !s->in_eof && us_fill(s) < 0)
			return -1;
		bool at_end = s->in_pos == s->in_len && s->in_eof;
		if (at_end && s->zlast == 0)
			break;
		size_t before = ob.pos;
		ZSTD_inBuffer ib = {s->in, s->in_len, s->in_pos};
		size_t r = ZSTD_decompressStream(s->zs, &ob, &ib);
		s->in_pos = ib.pos;
		if (ZSTD_isError(r))
			return us_fail(s, "zstd: corrupt compressed data", ZSTD_getErrorName(r));
		s->zlast = r;
		if (at_end && ob.pos == before && r != 0)
			return us_fail(s, "zstd: compressed data is truncated", NULL);
	}
	*buf = s->out;
	return (ssize_t)ob.pos;
}

/* Hash and count one uncompressed block; enforce the bomb limits. */
static int us_account(struct ustream *s, const void *buf, size_t n)
{
	char why[160];
	s->out_total += (int64_t)n;
	if (s->out_total > s->lim.max_bytes) {
		snprintf(why, sizeof why,
		         "more than %lld bytes uncompressed (limit; raise it with --max-layer-size or "
		         "QIMG_MAX_LAYER_SIZE)",
		         (long long)s->lim.max_bytes);
		return us_fail(s, "layer too large", why);
	}
	int64_t in = s->in_total > 0 ? s->in_total : 1;
	if (s->out_total > RATIO_FLOOR && s->out_total / in > s->lim.max_ratio) {
		snprintf(why, sizeof why, "ratio above %lld:1 (limit; raise it with --max-ratio or QIMG_MAX_RATIO)",
		         (long long)s->lim.max_ratio);
		return us_fail(s, "decompression bomb refused", why);
	}
	digester_update(s->md, buf, n);
	return 0;
}

/* Next block of the uncompressed stream: > 0 bytes, 0 at its end, -1 on error (s->err). */
static ssize_t us_next(struct ustream *s, const void **buf)
{
	if (s->done)
		return 0;
	if (s->failed)
		return -1;
	ssize_t n = s->codec == CODEC_GZIP   ? gz_next(s, buf)
	            : s->codec == CODEC_ZSTD ? zs_next(s, buf)
	                                     : raw_next(s, buf);
	if (n < 0)
		return -1;
	if (n == 0) {
		s->done = true;
		return 0;
	}
	if (us_account(s, *buf, (size_t)n) < 0)
		return -1;
	return n;
}

static enum codec sniff_codec(const unsigned char *p, size_t n)
{
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return CODEC_GZIP;
	if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return CODEC_ZSTD;
	return CODEC_NONE;
}

/* The layer media types qimg accepts, and the compression each declares. */
static int media_codec(const char *mt, enum codec *out)
{
	static const struct {
		const char *mt;
		enum codec codec;
	} known[] = {
	    {"application/vnd.oci.image.layer.v1.tar", CODEC_NONE},
	    {"application/vnd.oci.image.layer.v1.tar+gzip", CODEC_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", CODEC_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar", CODEC_NONE},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CODEC_GZIP},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CODEC_ZSTD},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip", CODEC_GZIP},
	    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", CODEC_GZIP},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(mt, known[i].mt)) {
			*out = known[i].codec;
			return 0;
		}
	return -1;
}

/* Open the stream over blob fd; the compression is taken from the data's magic bytes (the media type was
   checked to be a layer type; registries do mislabel plain tars as gzip). */
static int us_open(struct ustream *s, int fd, int64_t want, int notify, const char *media_type, const char *label,
                   const struct ovl_unpack_limits *lim, struct qerr *err)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->want = want;
	s->notify = notify;
	s->label = label;
	s->err = err;
	s->lim = *lim;
	s->zlast = 1;
	s->in = xmalloc(IN_BLOCK);
	s->out = xmalloc(OUT_BLOCK);
	s->md = digester_new();
	while (s->in_len < 4 && !s->in_eof) /* the magic bytes (a growing blob may come in small pieces) */
		if (us_fill(s) < 0)
			return -1;
	s->codec = sniff_codec(s->in, s->in_len);
	enum codec declared = s->codec;
	if (media_type && media_codec(media_type, &declared) < 0)
		return us_fail(s, "unsupported layer media type", media_type);
	if (declared != s->codec)
		log_debug("unpack %s: media type %s, but the data says codec %d", label, media_type, (int)s->codec);
	if (s->codec == CODEC_GZIP)
		return gz_init(s);
	if (s->codec == CODEC_ZSTD) {
		s->zs = ZSTD_createDStream();
		if (!s->zs)
			return us_fail(s, "zstd", "out of memory");
	}
	return 0;
}

static void us_close(struct ustream *s)
{
	if (s->codec == CODEC_GZIP)
		gz_free(s);
	if (s->zs)
		ZSTD_freeDStream(s->zs);
	if (s->md)
		digester_free(s->md);
	free(s->in);
	free(s->out);
}

/* Compare the digest of everything read (the caller drained the stream) with the diffID. */
static int us_check_digest(struct ustream *s, const char *diff_id)
{
	char got[DIGEST_LEN + 1];
	digester_final(s->md, got);
	if (strcmp(got, diff_id) != 0) {
		s->failed = true;
		return qerr_set(s->err, "unpack %s: diffID mismatch: the uncompressed layer is %s, expected %s", s->label,
		                got, diff_id);
	}
	return 0;
}

/* ======================================================================================================
 * The source libarchive reads: the stream itself, or a thread that runs the decompressor (and the hash) up to
 * RING blocks ahead while this thread extracts, so inflate and sha256 overlap the writes.
 * ====================================================================================================== */

#define RING 4

struct source {
	struct ustream *s;
	bool threaded;
	bool failed; /* src_next() returned an error (the stream's message comes out of src_stop) */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *buf[RING];
	size_t len[RING];
	uint64_t head, tail; /* blocks produced, blocks released by the consumer */
	bool held;           /* the consumer holds block `tail` (libarchive reads it until its next call) */
	bool done, cancel;
	unsigned char *own_out; /* the stream's own output buffer, given back at the end */
	struct qerr perr;       /* the producer's errors */
	struct qerr *err;
};

static void *src_produce(void *arg)
{
	struct source *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (r->head - r->tail >= RING && !r->cancel)
			pthread_cond_wait(&r->cv, &r->mu);
		bool stop = r->cancel;
		size_t slot = r->head % RING;
		pthread_mutex_unlock(&r->mu);
		ssize_t n = 0;
		if (!stop) {
			const void *p;
			r->s->out = r->buf[slot];
			n = us_next(r->s, &p);
			if (n > (ssize_t)OUT_BLOCK)
				n = us_fail(r->s, "decompressor", "block larger than the ring's");
			else if (n > 0 && p != r->buf[slot])
				memcpy(r->buf[slot], p, (size_t)n);
		}
		pthread_mutex_lock(&r->mu);
		if (n > 0) {
			r->len[slot] = (size_t)n;
			r->head++;
		} else {
			r->done = true;
		}
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		if (n <= 0)
			return NULL;
	}
}

/* Start the decompressing thread (not for plain tars: nothing to overlap but a copy); unthreaded on failure. */
static void src_start(struct source *r, struct ustream *s, struct qerr *err)
{
	memset(r, 0, sizeof *r);
	r->s = s;
	r->err = err;
	if (s->codec == CODEC_NONE)
		return;
	for (int i = 0; i < RING; i++)
		r->buf[i] = xmalloc(OUT_BLOCK);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->own_out = s->out;
	s->err = &r->perr;
	if (pthread_create(&r->th, NULL, src_produce, r) != 0) {
		s->err = err;
		s->out = r->own_out;
		for (int i = 0; i < RING; i++)
			free(r->buf[i]);
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		return;
	}
	r->threaded = true;
}

/* Next uncompressed block: > 0 bytes, 0 at the end, -1 on a stream error. */
static ssize_t src_next(struct source *r, const void **buf)
{
	ssize_t n;
	if (!r->threaded) {
		n = us_next(r->s, buf);
	} else {
		pthread_mutex_lock(&r->mu);
		if (r->held) {
			r->tail++;
			r->held = false;
			pthread_cond_broadcast(&r->cv);
		}
		while (r->head == r->tail && !r->done)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->head > r->tail) {
			size_t slot = r->tail % RING;
			*buf = r->buf[slot];
			n = (ssize_t)r->len[slot];
			r->held = true;
		} else {
			n = r->s->failed ? -1 : 0;
		}
		pthread_mutex_unlock(&r->mu);
	}
	if (n < 0)
		r->failed = true;
	return n;
}

/* Read to the end: what follows the tar's end-of-archive marker is part of the diffID too. */
static int src_drain(struct source *r)
{
	const void *buf;
	ssize_t n;
	while ((n = src_next(r, &buf)) > 0)
		;
	return n < 0 ? -1 : 0;
}

/* Stop and join the thread. Returns -1 when the stream failed; its message then replaces the caller's, since
   the stream's failure (bomb, corrupt data) explains whatever the tar reader said about it. */
static int src_stop(struct source *r)
{
	struct ustream *s = r->s;
	if (r->threaded) {
		pthread_mutex_lock(&r->mu);
		r->cancel = true;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->th, NULL);
		r->threaded = false;
		s->out = r->own_out;
		s->err = r->err;
		for (int i = 0; i < RING; i++)
			free(r->buf[i]);
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		if (s->failed)
			*r->err = r->perr;
	}
	return s->failed ? -1 : 0;
}

static la_ssize_t tar_read_cb(struct archive *a, void *client, const void **buf)
{
	struct source *r = client;
	ssize_t n = src_next(r, buf);
	if (n < 0)
		archive_set_error(a, EIO, "decompression failed");
	return n;
}

/* ======================================================================================================
 * Secure extraction: every path is walked component by component from the layer root with O_NOFOLLOW dir fds.
 * ====================================================================================================== */

struct epath {
	char joined[PATH_MAX]; /* normalised: "usr/bin/ls"; "" is the layer root */
	char split[PATH_MAX];  /* the same, NUL between components */
	char *comp[MAX_COMPS];
	size_t n;
};

/* The open dir fds of the last parent chain (levels 0..depth-1 = comp[0..depth-1]). */
struct dcache {
	int fd[MAX_COMPS];
	char *name[MAX_COMPS];
	bool sgid[MAX_COMPS];
	size_t depth;
};

struct dirtime {
	char *path;
	struct timespec ts[2];
};

struct xctx {
	const char *label;
	int rootfd; /* O_RDONLY dir fd of the layer being filled */
	bool root_sgid;
	struct epath p, t; /* the entry's path, a hardlink's target */
	struct dcache dc;
	struct dirtime *dts;
	size_t ndt, capdt;
	int64_t entries;
	int64_t apparent, max_apparent; /* apparent size of the regular files so far, and its limit */
	int64_t warned;                 /* tar warnings (ARCHIVE_WARN headers) */
	int64_t skipped;                /* devices and sockets not extracted */
	char *first_skipped;
	bool xattr_warned;
	bool single_id; /* the single-id user namespace: every owner becomes 0 (the user), modes are kept */
	struct qerr *err;
};

/* Untrusted names go into messages with control characters replaced. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s[i] && i + 4 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i])
		memcpy(buf + i++, "...", 3), i += 2;
	buf[i] = '\0';
	return buf;
}

static int xfail(struct xctx *x, const char *path, const char *what)
{
	char b[256];
	return qerr_set(x->err, "unpack %s: %s: %s", x->label, shown(path, b, sizeof b), what);
}

static int xfail_sys(struct xctx *x, const char *path, const char *what)
{
	char b[256];
	return qerr_sys(x->err, "unpack %s: %s: %s", x->label, shown(path, b, sizeof b), what);
}

/* Normalise a tar name: leading "/" and "./" dropped, "." and empty components skipped, ".." refused. */
static int path_parse(const char *name, struct epath *p, const char **why)
{
	size_t o = 0;
	p->n = 0;
	if (strlen(name) >= PATH_MAX) {
		*why = "name longer than PATH_MAX";
		return -1;
	}
	for (const char *s = name; *s;) {
		if (*s == '/') {
			s++;
			continue;
		}
		const char *e = strchrnul(s, '/');
		size_t cl = (size_t)(e - s);
		if (cl == 2 && s[0] == '.' && s[1] == '.') {
			*why = "\"..\" in path";
			return -1;
		}
		if (cl > NAME_MAX) {
			*why = "path component longer than NAME_MAX";
			return -1;
		}
		if (!(cl == 1 && s[0] == '.')) {
			if (o)
				p->joined[o] = '/', p->split[o++] = '\0';
			memcpy(p->joined + o, s, cl);
			memcpy(p->split + o, s, cl);
			p->comp[p->n++] = p->split + o;
			o += cl;
		}
		s = e;
	}
	p->joined[o] = p->split[o] = '\0';
	return 0;
}

static const char *base_of(const struct epath *p)
{
	return p->n ? p->comp[p->n - 1] : "";
}

static int set_opaque_fd(struct xctx *x, int dfd, const char *path)
{
	if (fsetxattr(dfd, OVL_OPAQUE_XATTR, OVL_OPAQUE_VALUE, 1, 0) < 0)
		return xfail_sys(x, path, "mark directory opaque (" OVL_OPAQUE_XATTR "; the store needs user xattrs)");
	return 0;
}

static int set_opaque_at(struct xctx *x, int pfd, const char *name, const char *path)
{
	autoclose int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return xfail_sys(x, path, "open directory");
	return set_opaque_fd(x, fd, path);
}

/* Remove whatever is at pfd/name (a whole tree for a directory): the later tar entry wins. */
static int replace_existing(struct xctx *x, int pfd, const char *name, const char *path)
{
	if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return xfail_sys(x, path, "remove existing entry");
	if (rm_rf_at(pfd, name, x->err) < 0)
		return qerr_wrap(x->err, "unpack %s: replace directory: ", x->label);
	return 0;
}

/* Step into dirfd/name as a directory, creating it (0755) when missing; never through a symlink.
   A whiteout left earlier in this layer becomes an opaque directory. */
static int walk_step(struct xctx *x, int dirfd, const char *name, const char *path, bool create, bool *sgid)
{
	for (int tries = 0; tries < 3; tries++) {
		int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			struct stat sb;
			if (fstat(fd, &sb) < 0) {
				close(fd);
				return xfail_sys(x, path, "stat parent directory");
			}
			*sgid = (sb.st_mode & S_ISGID) != 0;
			return fd;
		}
		if (errno == ENOENT && !create)
			return xfail(x, path, "hardlink target is not in this layer");
		if (errno == ENOENT) {
			if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
				return xfail_sys(x, path, "create parent directory");
			continue;
		}
		if (errno != ENOTDIR && errno != ELOOP)
			return xfail_sys(x, path, "open parent directory");
		struct stat sb;
		if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			return xfail_sys(x, path, "stat parent directory");
		if (S_ISLNK(sb.st_mode))
			return xfail(x, path, "path goes through symlink");
		if (!ovl_is_whiteout(&sb) || !create)
			return xfail(x, path, "parent is not a directory");
		if (unlinkat(dirfd, name, 0) < 0 || mkdirat(dirfd, name, 0755) < 0)
			return xfail_sys(x, path, "replace whiteout by directory");
		if (set_opaque_at(x, dirfd, name, path) < 0)
			return -1;
	}
	return xfail(x, path, "parent directory keeps changing");
}

static void dc_truncate(struct dcache *dc, size_t depth)
{
	while (dc->depth > depth) {
		dc->depth--;
		close(dc->fd[dc->depth]);
		free(dc->name[dc->depth]);
	}
}

/* The O_PATH fd of the entry's parent directory (owned by the cache), created as needed. */
static int parent_fd(struct xctx *x, bool *sgid)
{
	struct epath *p = &x->p;
	struct dcache *dc = &x->dc;
	size_t want = p->n - 1, k = 0;
	while (k < dc->depth && k < want && !strcmp(dc->name[k], p->comp[k]))
		k++;
	dc_truncate(dc, k);
	for (; k < want; k++) {
		int base = k ? dc->fd[k - 1] : x->rootfd;
		int fd = walk_step(x, base, p->comp[k], p->joined, true, &dc->sgid[k]);
		if (fd < 0)
			return -1;
		dc->fd[k] = fd;
		dc->name[k] = xstrdup(p->comp[k]);
		dc->depth = k + 1;
	}
	*sgid = want ? dc->sgid[want - 1] : x->root_sgid;
	return want ? dc->fd[want - 1] : x->rootfd;
}

/* A hardlink target's parent, walked without creating anything (caller closes). */
static int target_parent_fd(struct xctx *x, const char *desc)
{
	int fd = openat(x->rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return xfail_sys(x, desc, "open layer root");
	for (size_t k = 0; k + 1 < x->t.n; k++) {
		bool sgid;
		int next = walk_step(x, fd, x->t.comp[k], desc, false, &sgid);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

static int check_ids(struct xctx *x, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	la_int64_t u = archive_entry_uid(e), g = archive_entry_gid(e);
	if (u < 0 || u >= (la_int64_t)UINT32_MAX || g < 0 || g >= (la_int64_t)UINT32_MAX)
		return xfail(x, x->p.joined, "invalid uid or gid");
	*uid = x->single_id ? 0 : (uid_t)u;
	*gid = x->single_id ? 0 : (gid_t)g;
	return 0;
}

static int chown_fail(struct xctx *x, uid_t uid, gid_t gid)
{
	char what[160];
	if (errno != EINVAL)
		return xfail_sys(x, x->p.joined, "chown");
	snprintf(what, sizeof what,
	         "owner %u:%u is not mapped in the user namespace (widen the /etc/subuid and /etc/subgid ranges)",
	         (unsigned)uid, (unsigned)gid);
	return xfail(x, x->p.joined, what);
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = 0;
	ts[1].tv_nsec = UTIME_OMIT;
	if (archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = archive_entry_mtime(e);
		ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	}
	ts[0] = ts[1];
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	}
}

static void warn_xattr(struct xctx *x, const char *name, const char *why)
{
	char b[512], n[128];
	if (x->xattr_warned)
		return;
	x->xattr_warned = true;
	log_warn("unpack %s: %s: xattr %s not applied: %s (further xattr warnings for this layer suppressed)", x->label,
	         shown(x->p.joined, b, sizeof b), shown(name, n, sizeof n), why);
}

static void apply_xattrs(struct xctx *x, int fd, struct archive_entry *e)
{
	const char *name;
	const void *val;
	size_t size;
	if (archive_entry_xattr_reset(e) == 0)
		return;
	while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK) {
		if (!ovl_xattr_allowed(name))
			warn_xattr(x, name, "not an allowed namespace (user.*, security.capability)");
		else if (fsetxattr(fd, name, val, size, 0) < 0)
			warn_xattr(x, name, strerror(errno));
	}
}

/* Owner, then mode (chown clears set-id bits), then xattrs (a write would drop security.capability),
   then times. `created` is the mode the object was made with; dirs get their times at the end. */
static int apply_meta(struct xctx *x, int fd, struct archive_entry *e, mode_t created, bool parent_sgid, bool dir)
{
	uid_t uid = 0;
	gid_t gid = 0;
	mode_t mode = archive_entry_perm(e) & 07777;
	if (check_ids(x, e, &uid, &gid) < 0)
		return -1;
	if ((dir || uid || gid || parent_sgid) && fchown(fd, uid, gid) < 0)
		return chown_fail(x, uid, gid);
	if ((dir || mode != created) && fchmod(fd, mode) < 0)
		return xfail_sys(x, x->p.joined, "chmod");
	if (mode & (S_ISUID | S_ISGID)) { /* never lose a set-id bit silently */
		struct stat sb;
		if (fstat(fd, &sb) < 0 || (sb.st_mode & 07777) != mode)
			return xfail(x, x->p.joined, "set-id bit did not stick");
	}
	apply_xattrs(x, fd, e);
	if (dir)
		return 0;
	struct timespec ts[2];
	entry_times(e, ts);
	if (futimens(fd, ts) < 0)
		return xfail_sys(x, x->p.joined, "set times");
	return 0;
}

/* openat(O_CREAT|O_EXCL) or mk*at(), replacing what is there once. */
static int create_at(struct xctx *x, int pfd, const char *name, int (*make)(int, const char *, void *), void *arg)
{
	for (int tries = 0; tries < 2; tries++) {
		int r = make(pfd, name, arg);
		if (r >= 0 || errno != EEXIST)
			return r;
		if (replace_existing(x, pfd, name, x->p.joined) < 0)
			return -2;
	}
	errno = EEXIST;
	return -1;
}

static int make_file(int pfd, const char *name, void *arg)
{
	return openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, *(mode_t *)arg);
}

static int make_fifo(int pfd, const char *name, void *arg)
{
	(void)arg;
	return mkfifoat(pfd, name, 0600);
}

static int make_whiteout(int pfd, const char *name, void *arg)
{
	(void)arg;
	return mknodat(pfd, name, S_IFCHR, makedev(0, 0));
}

static int make_symlink(int pfd, const char *name, void *arg)
{
	return symlinkat((const char *)arg, pfd, name);
}

static int created_or_fail(struct xctx *x, int r, const char *what)
{
	if (r == -2)
		return -1;
	if (r < 0)
		return xfail_sys(x, x->p.joined, what);
	return r;
}

static int write_data(struct xctx *x, struct archive *a, int fd, struct archive_entry *e)
{
	const void *buf;
	size_t size;
	la_int64_t off, pos = 0;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return xfail(x, x->p.joined, ovl_archive_error(a));
		if (off != pos && lseek(fd, off, SEEK_SET) < 0)
			return xfail_sys(x, x->p.joined, "seek");
		if (write_all(fd, buf, size) < 0)
			return xfail_sys(x, x->p.joined, "write");
		pos = off + (la_int64_t)size;
	}
	if (pos < archive_entry_size(e) && ftruncate(fd, archive_entry_size(e)) < 0) /* sparse tail */
		return xfail_sys(x, x->p.joined, "truncate");
	return 0;
}

static int apply_file(struct xctx *x, struct archive *a, struct archive_entry *e)
{
	bool sgid;
	int pfd = parent_fd(x, &sgid);
	if (pfd < 0)
		return -1;
	/* Created without set-id bits and group/other write; the real mode comes after the chown. */
	mode_t created = archive_entry_perm(e) & 0755;
	autoclose int fd = created_or_fail(x, create_at(x, pfd, base_of(&x->p), make_file, &created), "create file");
	if (fd < 0)
		return -1;
	if (write_data(x, a, fd, e) < 0 || apply_meta(x, fd, e, created, sgid, false) < 0)
		return -1;
	/* Start writing big files out now, without waiting, so the syncfs before publishing finds less left to do
	   (Debian's layer on ext4 here: syncfs 0.23-0.35 s without, 0.14-0.19 s with. Doing it for every file got
	   0.01-0.09 s, but costs an I/O request per small file: 8% of the pull's CPU in virtio kicks.) */
	if (archive_entry_size(e) >= WRITEBACK_MIN)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return 0;
}

static int apply_fifo(struct xctx *x, struct archive_entry *e)
{
	bool sgid;
	int pfd = parent_fd(x, &sgid);
	if (pfd < 0 || created_or_fail(x, create_at(x, pfd, base_of(&x->p), make_fifo, NULL), "mkfifo") < 0)
		return -1;
	autoclose int fd = openat(pfd, base_of(&x->p), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return xfail_sys(x, x->p.joined, "open fifo");
	return apply_meta(x, fd, e, 0600, sgid, false);
}

static int apply_symlink(struct xctx *x, struct archive_entry *e)
{
	const char *target = archive_entry_symlink(e);
	bool sgid;
	uid_t uid = 0;
	gid_t gid = 0;
	if (!target || !*target || strlen(target) >= PATH_MAX)
		return xfail(x, x->p.joined, "symlink with an empty or over-long target");
	if (check_ids(x, e, &uid, &gid) < 0)
		return -1;
	int pfd = parent_fd(x, &sgid);
	const char *name = base_of(&x->p);
	/* The target is stored verbatim and never followed: every later walk refuses symlinks. */
	if (pfd < 0 || created_or_fail(x, create_at(x, pfd, name, make_symlink, (void *)target), "symlink") < 0)
		return -1;
	if ((uid || gid || sgid) && fchownat(pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return chown_fail(x, uid, gid);
	struct timespec ts[2];
	entry_times(e, ts);
	if (utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return xfail_sys(x, x->p.joined, "set times");
	return 0;
}

static int apply_hardlink(struct xctx *x, const char *target)
{
	const char *why = "empty";
	char b[600], t[512];
	if (path_parse(target, &x->t, &why) < 0 || x->t.n == 0) {
		snprintf(b, sizeof b, "hardlink target: %s", why);
		return xfail(x, x->p.joined, b);
	}
	if (!strcmp(x->t.joined, x->p.joined))
		return 0;
	autofree char *desc = xasprintf("%s (hardlink to %s)", x->p.joined, x->t.joined);
	autoclose int tfd = target_parent_fd(x, desc);
	if (tfd < 0)
		return -1;
	const char *tname = base_of(&x->t);
	struct stat sb;
	if (fstatat(tfd, tname, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(b, sizeof b, "hardlink target %s does not exist in this layer",
		         shown(x->t.joined, t, sizeof t));
		return xfail(x, x->p.joined, b);
	}
	if (S_ISDIR(sb.st_mode))
		return xfail(x, x->p.joined, "hardlink to a directory");
	bool sgid;
	int pfd = parent_fd(x, &sgid);
	if (pfd < 0)
		return -1;
	for (int tries = 0; tries < 2; tries++) {
		if (linkat(tfd, tname, pfd, base_of(&x->p), 0) == 0)
			return 0;
		if (errno != EEXIST)
			break;
		if (replace_existing(x, pfd, base_of(&x->p), x->p.joined) < 0)
			return -1;
	}
	return xfail_sys(x, x->p.joined, "hardlink");
}

static int apply_dir(struct xctx *x, struct archive_entry *e)
{
	bool sgid = false, opaque = false;
	autoclose int dfd = -1;
	if (x->p.n == 0) {
		dfd = openat(x->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		int pfd = parent_fd(x, &sgid);
		const char *name = base_of(&x->p);
		if (pfd < 0)
			return -1;
		if (mkdirat(pfd, name, 0700) < 0) {
			struct stat sb;
			if (errno != EEXIST || fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				return xfail_sys(x, x->p.joined, "mkdir");
			if (!S_ISDIR(sb.st_mode)) {
				/* A directory replacing a whiteout from this layer must not show the lower one. */
				opaque = ovl_is_whiteout(&sb);
				if (replace_existing(x, pfd, name, x->p.joined) < 0)
					return -1;
				if (mkdirat(pfd, name, 0700) < 0)
					return xfail_sys(x, x->p.joined, "mkdir");
			}
		}
		dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (dfd < 0)
		return xfail_sys(x, x->p.joined, "open directory");
	if (opaque && set_opaque_fd(x, dfd, x->p.joined) < 0)
		return -1;
	if (apply_meta(x, dfd, e, 0, sgid, true) < 0)
		return -1;
	if (x->p.n == 0)
		x->root_sgid = (archive_entry_perm(e) & S_ISGID) != 0;
	if (x->ndt == x->capdt) {
		x->capdt = x->capdt ? 2 * x->capdt : 256;
		x->dts = xrealloc(x->dts, x->capdt * sizeof *x->dts);
	}
	x->dts[x->ndt].path = xstrdup(x->p.joined);
	entry_times(e, x->dts[x->ndt].ts);
	x->ndt++;
	return 0;
}

/* ".wh.NAME" -> a 0:0 char device NAME; ".wh..wh..opq" -> the parent marked opaque. */
static int apply_whiteout(struct xctx *x)
{
	const char *base = base_of(&x->p);
	bool sgid;
	int pfd;
	if (!strcmp(base, OCI_WH_OPAQUE)) {
		if ((pfd = parent_fd(x, &sgid)) < 0)
			return -1;
		autoclose int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return xfail_sys(x, x->p.joined, "open directory");
		return set_opaque_fd(x, dfd, x->p.joined);
	}
	if (!strncmp(base, OCI_WH_META_PREFIX, strlen(OCI_WH_META_PREFIX))) {
		log_debug("unpack %s: skipping aufs metadata entry", x->label);
		return 0;
	}
	const char *name = base + strlen(OCI_WH_PREFIX);
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return xfail(x, x->p.joined, "invalid whiteout name");
	if ((pfd = parent_fd(x, &sgid)) < 0)
		return -1;
	if (mknodat(pfd, name, S_IFCHR, makedev(0, 0)) == 0)
		return 0;
	struct stat sb;
	if (errno != EEXIST || fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return xfail_sys(x, x->p.joined, "create whiteout");
	/* NAME also comes from this layer: it stays (the spec hides lower layers only); a dir of this layer
	   hides the lower one by being opaque. */
	if (S_ISDIR(sb.st_mode))
		return set_opaque_at(x, pfd, name, x->p.joined);
	return 0;
}

static int apply_special(struct xctx *x, struct archive_entry *e)
{
	if (archive_entry_filetype(e) == AE_IFCHR && archive_entry_rdev(e) == 0) { /* already a whiteout */
		bool sgid;
		int pfd = parent_fd(x, &sgid);
		if (pfd < 0)
			return -1;
		return created_or_fail(x, create_at(x, pfd, base_of(&x->p), make_whiteout, NULL), "mknod") < 0 ? -1 : 0;
	}
	if (x->skipped++ == 0)
		x->first_skipped = xstrdup(x->p.joined);
	return 0;
}

/* Count a regular file's apparent size (a sparse entry's holes included) against the layer's limit, before
   anything of it is written. */
static int apparent_add(struct xctx *x, struct archive_entry *e)
{
	int64_t size = archive_entry_size(e);
	if (size < 0)
		return xfail(x, x->p.joined, "negative file size");
	if (size <= x->max_apparent - x->apparent) {
		x->apparent += size;
		return 0;
	}
	char why[320];
	snprintf(why, sizeof why,
	         "apparent size %lld bytes (holes included) takes the layer's files past the apparent-size limit of "
	         "%lld bytes (raise it with --max-apparent-size or QIMG_MAX_APPARENT_SIZE)",
	         (long long)size, (long long)x->max_apparent);
	return xfail(x, x->p.joined, why);
}

static int apply_entry(struct xctx *x, struct archive *a, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e), *why;
	if (!name)
		return xfail(x, "?", "entry without a name");
	if (path_parse(name, &x->p, &why) < 0)
		return xfail(x, name, why);
	const char *base = base_of(&x->p);
	if (x->p.n && !strncmp(base, OCI_WH_PREFIX, strlen(OCI_WH_PREFIX)))
		return apply_whiteout(x);
	if (archive_entry_hardlink(e)) {
		if (x->p.n == 0)
			return xfail(x, name, "hardlink names the layer root");
		return apply_hardlink(x, archive_entry_hardlink(e));
	}
	mode_t type = archive_entry_filetype(e);
	if (type == AE_IFDIR)
		return apply_dir(x, e);
	if (x->p.n == 0)
		return xfail(x, name, "non-directory entry names the layer root");
	switch (type) {
	case AE_IFREG: return apparent_add(x, e) < 0 ? -1 : apply_file(x, a, e);
	case AE_IFLNK: return apply_symlink(x, e);
	case AE_IFIFO: return apply_fifo(x, e);
	default: return apply_special(x, e);
	}
}

/* Directory times last (creating children changed them), resolved again without following anything. */
static int apply_dirtimes(struct xctx *x)
{
	for (size_t i = 0; i < x->ndt; i++) {
		struct dirtime *d = &x->dts[i];
		int fd = *d->path ? openat_beneath(x->rootfd, d->path, O_RDONLY | O_DIRECTORY) : fcntl(x->rootfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV))
			continue; /* replaced by a later entry */
		if (fd < 0)
			return xfail_sys(x, d->path, "open directory");
		int r = futimens(fd, d->ts);
		close(fd);
		if (r < 0)
			return xfail_sys(x, d->path, "set times");
	}
	return 0;
}

static void xctx_free(struct xctx *x)
{
	dc_truncate(&x->dc, 0);
	for (size_t i = 0; i < x->ndt; i++)
		free(x->dts[i].path);
	free(x->dts);
	free(x->first_skipped);
}

static int tar_error(struct xctx *x, struct source *r, struct archive *a)
{
	if (r->failed)
		return -1; /* the stream's own message comes out of src_stop() */
	return qerr_set(x->err, "unpack %s: read tar: %s", x->label, ovl_archive_error(a));
}

/* The first warning of a layer is shown (the entry is used as read); the rest only counted. */
static void tar_warning(struct xctx *x, struct archive *a, struct archive_entry *e)
{
	char b[256];
	const char *name = archive_entry_pathname(e);
	if (x->warned++ == 0)
		log_warn("unpack %s: %s: %s (entry used as read; further tar warnings of this layer not shown)",
		         x->label, name ? shown(name, b, sizeof b) : "?", ovl_archive_error(a));
}

/* Extract the whole tar stream into x->rootfd; entries counted. */
static int extract_tar(struct xctx *x, struct source *src)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r, rc = -1;
	if (!a)
		return qerr_set(x->err, "unpack %s: libarchive: out of memory", x->label);
	x->max_apparent = src->s->lim.max_apparent;
	if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_set_format(a, ARCHIVE_FORMAT_TAR) ||
	    archive_read_open(a, src, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
		tar_error(x, src, a);
		goto out;
	}
	/* ARCHIVE_WARN is an entry read whole with a remark: a PAX name or link that is not UTF-8 (Go's archive/tar
	   writes such records for latin-1 file names; the raw bytes are the name, as docker and podman read it), an
	   unparsable PAX record (ignored, as Go does). docs/SECURITY.md, tar dialects. */
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (r == ARCHIVE_WARN)
			tar_warning(x, a, e);
		if (++x->entries > src->s->lim.max_entries) {
			qerr_set(x->err,
			         "unpack %s: more than %lld entries (limit; raise it with --max-entries or "
			         "QIMG_MAX_ENTRIES)",
			         x->label, (long long)src->s->lim.max_entries);
			goto out;
		}
		if (apply_entry(x, a, e) < 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		tar_error(x, src, a);
		goto out;
	}
	rc = 0;
out:
	archive_read_free(a);
	return rc;
}

/* ======================================================================================================
 * One layer, inside its worker process
 * ====================================================================================================== */

struct layer_stats {
	int64_t compressed, size, entries;
	double seconds;
};

/* What one worker unpacks. */
struct task {
	struct ovl_layer_job job;
	int blobfd;   /* >= 0: the blob is still being downloaded into this file: read it as it grows */
	int64_t size; /* ... to this size */
	int gate;     /* >= 0: publish only after the pull writes 'V' here (the blob verified) */
};

/* An inotify fd that wakes us when fd's file is written to; -1 if there is none (then we poll). */
static int watch_blob(int fd)
{
	char path[64];
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (in >= 0 && inotify_add_watch(in, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
		close(in);
		in = -1;
	}
	return in;
}

static int unpack_into(struct store *st, const struct task *t, int rootfd, const char *label,
                       const struct ovl_unpack_limits *lim, bool single_id, struct layer_stats *ls, struct qerr *err)
{
	const struct ovl_layer_job *job = &t->job;
	double t0 = now_mono();
	autoclose int own = t->blobfd < 0 ? store_blob_open(st, job->blob_digest, err) : -1;
	if (t->blobfd < 0 && own < 0)
		return qerr_wrap(err, "unpack %s: ", label);
	autoclose int notify = t->blobfd >= 0 ? watch_blob(t->blobfd) : -1;
	struct ustream s;
	struct xctx *x = xcalloc(1, sizeof *x);
	x->label = label;
	x->rootfd = rootfd;
	x->err = err;
	x->single_id = single_id;
	int rc = us_open(&s, t->blobfd >= 0 ? t->blobfd : own, t->blobfd >= 0 ? t->size : 0, notify, job->media_type,
	                 label, lim, err);
	if (rc == 0) {
		struct source src;
		src_start(&src, &s, err);
		rc = extract_tar(x, &src);
		if (rc == 0)
			rc = src_drain(&src);
		if (src_stop(&src) < 0)
			rc = -1;
		if (rc == 0)
			rc = us_check_digest(&s, job->diff_id);
		if (rc == 0)
			rc = apply_dirtimes(x);
	}
	if (rc == 0 && x->skipped) {
		char b[512];
		log_warn("unpack %s: skipped %lld device/socket entries such as %s (the runner provides /dev)", label,
		         (long long)x->skipped, shown(x->first_skipped, b, sizeof b));
	}
	ls->compressed = s.in_total;
	ls->size = s.out_total;
	ls->entries = x->entries;
	ls->seconds = now_mono() - t0;
	us_close(&s);
	xctx_free(x);
	free(x);
	return rc;
}

static int write_layer_json(struct store *st, const struct ovl_layer_job *job, const struct layer_stats *ls,
                            struct qerr *err)
{
	autofree char *rel = xasprintf("layers/%s.json", job->layer_id);
	/* media_type was checked against the known list, the digests are validated: nothing needs escaping. */
	autofree char *json =
	    xasprintf("{\"diffID\":\"%s\",\"blob\":\"%s\",\"mediaType\":\"%s\",\"compressedSize\":%lld,"
	              "\"size\":%lld,\"files\":%lld,\"unpackSeconds\":%.3f}",
	              job->diff_id, job->blob_digest, job->media_type ? job->media_type : "", (long long)ls->compressed,
	              (long long)ls->size, (long long)ls->entries, ls->seconds);
	return write_file_atomic_at(st->rootfd, rel, json, strlen(json), 0644, true, err);
}

/* Make the layer durable (one syncfs for all its files), then publish: metadata first, the dir last. */
static int publish(struct store *st, const struct ovl_layer_job *job, int rootfd, const char *tmpname,
                   const char *label, const struct layer_stats *ls, const char *map, struct qerr *err)
{
	autofree char *from = xasprintf("tmp/%s", tmpname);
	autofree char *to = xasprintf("layers/%s", job->layer_id);
	if (syncfs(rootfd) < 0)
		return qerr_sys(err, "unpack %s: syncfs", label);
	if (write_layer_json(st, job, ls, err) < 0 || store_layer_idmap_set(st, job->layer_id, map, err) < 0)
		return qerr_wrap(err, "unpack %s: ", label);
	if (renameat2(st->rootfd, from, st->rootfd, to, RENAME_NOREPLACE) < 0) {
		int saved = errno;
		if (saved == EEXIST)
			return 1; /* produced meanwhile by someone not using the lock: keep theirs */
		autofree char *json = xasprintf("layers/%s.json", job->layer_id);
		unlinkat(st->rootfd, json, 0);
		errno = saved;
		return qerr_sys(err, "unpack %s: rename %s to %s", label, from, to);
	}
	autoclose int lfd = openat(st->rootfd, "layers", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || fsync(lfd) < 0)
		return qerr_sys(err, "unpack %s: fsync layers/", label);
	return 0;
}

static int remove_tmp(struct store *st, const char *tmpname, struct qerr *err)
{
	autoclose int tfd = openat(st->rootfd, "tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		return qerr_sys(err, "unpack: open %s/tmp", st->root);
	return rm_rf_at(tfd, tmpname, err);
}

/* Lock the layer, re-check it (a concurrent pull may have made it), unpack into tmp/<tmpname>, publish. */
/* Wait for the pull to say the blob this layer was read from (while it downloaded) is verified and stored. */
static int wait_verified(const struct task *t, const char *label, struct qerr *err)
{
	char c = 0;
	ssize_t n;
	if (t->gate < 0)
		return 0;
	while ((n = read(t->gate, &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && c == 'V')
		return 0;
	return qerr_set(err, "unpack %s: blob %s was not verified", label, t->job.blob_digest);
}

/* A layer unpacked for another id map (the user's subuid range changed since): its files show the wrong owners in
   this map and cannot be removed from inside it. It is moved aside into tmp/ (for gc, or an administrator) and
   unpacked again. */
static int layer_map_current(struct store *st, const char *id, const char *label, const char *map, bool *ok,
                             struct qerr *err)
{
	char have[USERNS_MAP_MAX];
	int rc = store_layer_idmap_check(st, id, map, have, sizeof have, err);
	if (rc < 0)
		return qerr_wrap(err, "unpack %s: ", label);
	*ok = rc == 1;
	if (*ok)
		return 0;
	char rnd[17];
	random_hex(rnd, 16);
	autofree char *from = xasprintf("layers/%s", id),
	              *to = xasprintf("tmp/" STORE_TMP_STALE "%d-%s", (int)getpid(), rnd);
	log_warn("layer %s was unpacked for the id map \"%s\", not this one (\"%s\"): unpacking it again", label, have,
	         map);
	if (renameat(st->rootfd, from, st->rootfd, to) < 0)
		return qerr_sys(err, "unpack %s: move the layer unpacked for another id map aside", label);
	return 0;
}

static int unpack_one(struct store *st, const struct task *t, const char *tmpname, const struct ovl_unpack_limits *lim,
                      const char *map, struct qerr *err)
{
	const struct ovl_layer_job *job = &t->job;
	char label[LABEL_LEN + 1];
	snprintf(label, sizeof label, "%s", job->layer_id);
	autoclose int lock = store_lock_object(st, "layer", job->layer_id, true, true, err);
	if (lock < 0)
		return qerr_wrap(err, "unpack %s: ", label);
	bool current = false;
	if (store_layer_exists(st, job->layer_id) &&
	    (layer_map_current(st, job->layer_id, label, map, &current, err) < 0 || current))
		return current ? remove_tmp(st, tmpname, err) : -1;
	autofree char *rel = xasprintf("tmp/%s", tmpname);
	autoclose int rootfd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		return qerr_sys(err, "unpack %s: open %s", label, rel);
	struct layer_stats ls = {0};
	int r = fchmod(rootfd, 0755) < 0 ? qerr_sys(err, "unpack %s: chmod %s", label, rel) : 0;
	if (r == 0)
		r = unpack_into(st, t, rootfd, label, lim, userns_map_single(map), &ls, err);
	if (r == 0)
		r = wait_verified(t, label, err);
	if (r == 0)
		r = publish(st, job, rootfd, tmpname, label, &ls, map, err);
	if (r != 0) {
		struct qerr ignored = {0};
		remove_tmp(st, tmpname, &ignored);
	}
	if (r == 0)
		log_info("unpack %s: %lld entries, %lld bytes in %.2fs", label, (long long)ls.entries,
		         (long long)ls.size, ls.seconds);
	return r < 0 ? -1 : 0;
}

/* ======================================================================================================
 * Workers: one forked process per layer, at most `max` at once, reporting through a pipe. Jobs queue in an
 * ovl_unpacker; a job may read its blob while the pull is still downloading it (struct task's gate).
 * ====================================================================================================== */

/* UJ_RETRY: it failed while its blob was still unverified (a resumed download with a bad prefix, say): it runs
   again from the stored blob once the blob verifies; the failure stands if it does not. */
enum ujob_state { UJ_QUEUED, UJ_RUNNING, UJ_RETRY, UJ_DONE };

struct ujob {
	struct ovl_layer_job job; /* strings owned here */
	int blobfd;               /* the blob's file while it downloads (ours), or -1: it is in the store */
	int64_t size;
	bool verified; /* the download finished and verified (then the worker reads the stored blob) */
	enum ujob_state state;
	struct qerr failed; /* UJ_RETRY: why */
};

struct worker {
	pid_t pid;
	int rfd;
	int gate; /* write end of the worker's gate (a streaming job), or -1 */
	size_t job;
	char *tmpname;
	bool killed;
	struct buf msg;
};

struct ovl_unpacker {
	struct store *st;
	struct ovl_unpack_limits lim;
	size_t max;
	struct ujob *jobs;
	size_t njobs, capjobs;
	struct worker *w; /* the running ones: w[0 .. running) */
	size_t running;
	bool failed;
	struct qerr err; /* the first failure */
	char **dead;     /* tmp dirs of killed workers */
	size_t ndead, capdead;
	char map[USERNS_MAP_MAX]; /* the id map layers are unpacked for ("" until the first job asks) */
};

static void worker_setup(void)
{
	umask(0);
	/* Pax names are UTF-8: convert them to themselves, not to ASCII (libarchive follows LC_CTYPE). */
	setlocale(LC_CTYPE, "C.UTF-8");
	/* Deep trees keep one dir fd per level. */
	nofile_raise();
}

static void report(int fd, const struct qerr *e)
{
	if (!e)
		(void)!write(fd, "O", 1);
	else {
		char *m = xasprintf("E%d %s", e->code, e->msg);
		(void)write_all(fd, m, strlen(m));
		free(m);
	}
}

static _Noreturn void worker_main(struct store *st, const struct task *t, const char *tmpname,
                                  const struct ovl_unpack_limits *lim, pid_t parent, int wfd)
{
	struct qerr e = {0};
	int rc = 0;
	char map[USERNS_MAP_MAX];
	if (userns_join(map, &e) < 0)
		rc = qerr_wrap(&e, "unpack: enter the user namespace: ");
	/* Die with the pull (set after the namespace switch, which clears it). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	worker_setup();
	if (rc == 0) {
		rc = unpack_one(st, t, tmpname, lim, map, &e);
	} else {
		struct qerr ignored = {0};
		remove_tmp(st, tmpname, &ignored); /* still empty and ours */
	}
	report(wfd, rc == 0 ? NULL : &e);
	_exit(rc == 0 ? 0 : 1);
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* Fork a worker for job j into *w (a fresh tmp dir; a gate when it reads a blob still downloading). */
static int worker_start(struct ovl_unpacker *u, size_t j, struct worker *w, struct qerr *err)
{
	struct ujob *uj = &u->jobs[j];
	bool streaming = uj->blobfd >= 0 && !uj->verified;
	int pfd[2] = {-1, -1}, gfd[2] = {-1, -1};
	memset(w, 0, sizeof *w);
	w->job = j;
	w->gate = -1;
	int tfd = store_tmp_dir(u->st, "unpack", &w->tmpname, err);
	if (tfd < 0)
		return -1;
	close(tfd);
	pid_t parent = getpid();
	/* The gate is a socket so that telling a worker that already died does not SIGPIPE the pull. */
	if (pipe2(pfd, O_CLOEXEC) < 0 || (streaming && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gfd) < 0)) {
		qerr_sys(err, "unpack: pipe");
		goto fail;
	}
	w->pid = fork();
	if (w->pid < 0) {
		qerr_sys(err, "unpack: fork");
		goto fail;
	}
	if (w->pid == 0) {
		struct task t = {uj->job, streaming ? uj->blobfd : -1, uj->size, gfd[0]};
		close(pfd[0]);
		if (gfd[1] >= 0)
			close(gfd[1]);
		worker_main(u->st, &t, w->tmpname, &u->lim, parent, pfd[1]);
	}
	close(pfd[1]);
	if (gfd[0] >= 0)
		close(gfd[0]);
	w->rfd = pfd[0];
	w->gate = gfd[1];
	uj->state = UJ_RUNNING;
	return 0;
fail:
	close_pair(pfd);
	close_pair(gfd);
	struct qerr ignored = {0};
	remove_tmp(u->st, w->tmpname, &ignored);
	free(w->tmpname);
	w->tmpname = NULL;
	return -1;
}

/* Reap a worker whose pipe reached EOF: 0 = layer done, -1 = err filled. */
static int worker_finish(struct worker *w, const struct ovl_layer_job *job, struct qerr *err)
{
	int status = 0;
	close(w->rfd);
	if (w->gate >= 0)
		close(w->gate);
	w->gate = -1;
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	buf_append(&w->msg, "", 1);
	if (w->msg.p[0] == 'O' && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (w->msg.p[0] == 'E') {
		char *sp = strchr(w->msg.p, ' ');
		err->code = atoi(w->msg.p + 1);
		snprintf(err->msg, sizeof err->msg, "%s", sp ? sp + 1 : "unpack: worker failed");
		return -1;
	}
	if (WIFSIGNALED(status))
		return qerr_set(err, "unpack %.12s: worker killed by signal %d", job->layer_id, WTERMSIG(status));
	return qerr_set(err, "unpack %.12s: worker exited with status %d", job->layer_id, WEXITSTATUS(status));
}

struct killed {
	struct store *st;
	char **names;
	size_t n;
};

static int remove_killed(void *arg, struct qerr *err)
{
	const struct killed *k = arg;
	for (size_t i = 0; i < k->n; i++)
		if (remove_tmp(k->st, k->names[i], err) < 0)
			log_warn("%s", err->msg);
	return 0;
}

/* Remove the tmp dirs of killed workers; their files may belong to mapped ids, so rootless goes into the ns. */
static void cleanup_killed(struct store *st, char **names, size_t n)
{
	if (n == 0)
		return;
	struct killed k = {st, names, n};
	struct qerr e = {0};
	if (!st->rootless)
		(void)remove_killed(&k, &e);
	else if (userns_call(true, "unpack: clean up", remove_killed, &k, &e) < 0)
		log_warn("%s", e.msg);
}

static bool job_valid(const struct ovl_layer_job *j)
{
	const char *id = j->layer_id;
	if (!id || strlen(id) != DIGEST_HEX_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return store_digest_valid(j->blob_digest) && store_digest_valid(j->diff_id);
}

const char *ovl_archive_error(struct archive *a)
{
	const char *m = a ? archive_error_string(a) : NULL;
	/* (its errno is then stale, not a reason) */
	return m && *m ? m : "damaged or truncated tar data (libarchive stopped without giving a reason)";
}

struct ovl_unpack_limits ovl_limits_resolve(const struct ovl_unpack_limits *l)
{
	struct ovl_unpack_limits r = {OVL_DEFAULT_MAX_BYTES, OVL_DEFAULT_MAX_RATIO, OVL_DEFAULT_MAX_ENTRIES,
	                              OVL_DEFAULT_MAX_APPARENT};
	if (l && l->max_bytes > 0)
		r.max_bytes = l->max_bytes;
	if (l && l->max_ratio > 0)
		r.max_ratio = l->max_ratio;
	if (l && l->max_entries > 0)
		r.max_entries = l->max_entries;
	if (l && l->max_apparent > 0)
		r.max_apparent = l->max_apparent;
	else if (r.max_bytes > r.max_apparent)
		r.max_apparent = r.max_bytes; /* a dense layer within the size limit must fit */
	return r;
}

/* ---- the pool ---- */

struct ovl_unpacker *ovl_unpacker_new(struct store *st, int workers, const struct ovl_unpack_limits *lim)
{
	struct ovl_unpacker *u = xcalloc(1, sizeof *u);
	if (workers <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		workers = cpus > 0 ? (int)cpus : 1;
	}
	u->st = st;
	u->lim = ovl_limits_resolve(lim);
	u->max = (size_t)workers;
	u->w = xcalloc(u->max, sizeof *u->w);
	return u;
}

static void unpacker_fail(struct ovl_unpacker *u, const struct qerr *e)
{
	if (!u->failed && e)
		u->err = *e;
	u->failed = true;
	for (size_t i = 0; i < u->running; i++)
		if (!u->w[i].killed) {
			kill(u->w[i].pid, SIGKILL);
			u->w[i].killed = true;
		}
}

/* Done with running worker i (its pipe ended, or it was killed): reap it and drop it from the running set. */
static void unpacker_reap(struct ovl_unpacker *u, size_t i)
{
	struct worker *w = &u->w[i];
	struct ujob *uj = &u->jobs[w->job];
	struct qerr we = {0};
	int rc = worker_finish(w, &uj->job, &we);
	if (w->killed) {
		if (u->ndead == u->capdead) {
			u->capdead = u->capdead ? 2 * u->capdead : 8;
			u->dead = xrealloc(u->dead, u->capdead * sizeof *u->dead);
		}
		u->dead[u->ndead++] = w->tmpname;
	} else {
		free(w->tmpname);
	}
	if (uj->state == UJ_RUNNING)
		uj->state = UJ_DONE;
	if (rc < 0 && !w->killed && !uj->verified) {
		log_debug("%s (the blob is not verified yet: will retry once it is)", we.msg);
		uj->failed = we;
		uj->state = UJ_RETRY;
	} else if (rc < 0 && !w->killed) {
		unpacker_fail(u, &we);
	}
	buf_free(&w->msg);
	u->w[i] = u->w[--u->running];
}

static void unpacker_start(struct ovl_unpacker *u)
{
	for (size_t j = 0; j < u->njobs && !u->failed && u->running < u->max; j++) {
		if (u->jobs[j].state != UJ_QUEUED)
			continue;
		struct qerr e = {0};
		if (worker_start(u, j, &u->w[u->running], &e) < 0) {
			unpacker_fail(u, &e);
			break;
		}
		u->running++;
	}
}

int ovl_unpacker_add(struct ovl_unpacker *u, const struct ovl_layer_job *job, int blob_fd, int64_t size,
                     struct qerr *err)
{
	if (!job_valid(job))
		return qerr_set(err, "unpack: invalid layer job (layer id \"%.80s\")",
		                job->layer_id ? job->layer_id : "");
	for (size_t j = 0; j < u->njobs; j++)
		if (!strcmp(u->jobs[j].job.layer_id, job->layer_id))
			return 0;
	if (!u->map[0]) {
		if (userns_map(u->map, err) < 0)
			return qerr_wrap(err, "unpack: ");
		userns_notice(u->st, u->map);
	}
	if (store_layer_current(u->st, job->layer_id, u->map))
		return 0;
	int fd = blob_fd >= 0 ? fcntl(blob_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (blob_fd >= 0 && fd < 0)
		return qerr_sys(err, "unpack: dup blob fd");
	if (u->njobs == u->capjobs) {
		u->capjobs = u->capjobs ? 2 * u->capjobs : 8;
		u->jobs = xrealloc(u->jobs, u->capjobs * sizeof *u->jobs);
	}
	struct ujob *uj = &u->jobs[u->njobs++];
	uj->job.blob_digest = xstrdup(job->blob_digest);
	uj->job.media_type = job->media_type ? xstrdup(job->media_type) : NULL;
	uj->job.diff_id = xstrdup(job->diff_id);
	uj->job.layer_id = xstrdup(job->layer_id);
	uj->blobfd = fd;
	uj->size = size;
	uj->verified = fd < 0;
	uj->state = UJ_QUEUED;
	unpacker_start(u);
	return 0;
}

static struct worker *worker_of(struct ovl_unpacker *u, size_t j)
{
	for (size_t i = 0; i < u->running; i++)
		if (u->w[i].job == j)
			return &u->w[i];
	return NULL;
}

void ovl_unpacker_blob_done(struct ovl_unpacker *u, const char *blob_digest, bool ok)
{
	for (size_t j = 0; j < u->njobs; j++) {
		struct ujob *uj = &u->jobs[j];
		if (uj->verified || strcmp(uj->job.blob_digest, blob_digest) != 0)
			continue;
		struct worker *w = uj->state == UJ_RUNNING ? worker_of(u, j) : NULL;
		if (!ok) {
			struct qerr e = {0};
			qerr_set(&e, "unpack %.12s: blob %s was not verified", uj->job.layer_id, blob_digest);
			unpacker_fail(u, uj->state == UJ_RETRY ? &uj->failed : &e);
			return;
		}
		uj->verified = true;
		if (uj->state == UJ_RETRY)
			uj->state = UJ_QUEUED;
		if (w && w->gate >= 0) {
			if (send(w->gate, "V", 1, MSG_NOSIGNAL) != 1)
				log_debug("unpack %.12s: worker gone before its blob verified", uj->job.layer_id);
			close(w->gate);
			w->gate = -1;
		}
	}
}

void ovl_unpacker_blob_restart(struct ovl_unpacker *u, const char *blob_digest)
{
	for (size_t j = 0; j < u->njobs; j++) {
		struct ujob *uj = &u->jobs[j];
		struct worker *w = uj->state == UJ_RUNNING ? worker_of(u, j) : NULL;
		if (!w || uj->verified || strcmp(uj->job.blob_digest, blob_digest) != 0)
			continue;
		kill(w->pid, SIGKILL);
		w->killed = true;
		uj->state = UJ_QUEUED; /* read again from the start */
		unpacker_reap(u, (size_t)(w - u->w));
	}
}

int ovl_unpacker_poll(struct ovl_unpacker *u, int timeout_ms, struct qerr *err)
{
	unpacker_start(u);
	size_t n = u->running;
	if (n > 0) {
		struct pollfd *pf = xcalloc(n, sizeof *pf);
		for (size_t i = 0; i < n; i++)
			pf[i] = (struct pollfd){.fd = u->w[i].rfd, .events = POLLIN};
		if (poll(pf, n, timeout_ms) < 0 && errno != EINTR) {
			struct qerr e = {0};
			qerr_sys(&e, "unpack: poll");
			unpacker_fail(u, &e);
		}
		for (size_t i = n; i-- > 0;) { /* from the end: reaping moves the last worker into slot i */
			if (!pf[i].revents)
				continue;
			char chunk[1024];
			ssize_t r = read(u->w[i].rfd, chunk, sizeof chunk);
			if (r > 0)
				buf_append(&u->w[i].msg, chunk, (size_t)r);
			else if (r == 0 || errno != EINTR)
				unpacker_reap(u, i);
		}
		free(pf);
		unpacker_start(u);
	}
	if (u->failed) {
		*err = u->err;
		return -1;
	}
	return 0;
}

static bool unpacker_busy(const struct ovl_unpacker *u)
{
	for (size_t j = 0; j < u->njobs; j++)
		if (u->jobs[j].state == UJ_QUEUED || u->jobs[j].state == UJ_RUNNING)
			return true;
	return false;
}

int ovl_unpacker_finish(struct ovl_unpacker *u, struct qerr *err)
{
	while (!u->failed && unpacker_busy(u))
		if (ovl_unpacker_poll(u, -1, err) < 0)
			return -1;
	for (size_t j = 0; j < u->njobs && !u->failed; j++)
		if (u->jobs[j].state == UJ_RETRY) /* its blob never verified: the failure stands */
			unpacker_fail(u, &u->jobs[j].failed);
	if (u->failed) {
		*err = u->err;
		return -1;
	}
	return 0;
}

void ovl_unpacker_free(struct ovl_unpacker *u)
{
	if (!u)
		return;
	if (u->running > 0) {
		struct qerr e = {0};
		qerr_set(&e, "unpack: stopped");
		unpacker_fail(u, &e);
	}
	while (u->running > 0)
		unpacker_reap(u, u->running - 1);
	cleanup_killed(u->st, u->dead, u->ndead);
	for (size_t i = 0; i < u->ndead; i++)
		free(u->dead[i]);
	for (size_t j = 0; j < u->njobs; j++) {
		struct ujob *uj = &u->jobs[j];
		if (uj->blobfd >= 0)
			close(uj->blobfd);
		free((char *)uj->job.blob_digest);
		free((char *)uj->job.media_type);
		free((char *)uj->job.diff_id);
		free((char *)uj->job.layer_id);
	}
	free(u->dead);
	free(u->jobs);
	free(u->w);
	free(u);
}

int ovl_unpack_layers(struct store *st, const struct ovl_layer_job *jobs, size_t n, int workers,
                      const struct ovl_unpack_limits *lim, struct qerr *err)
{
	for (size_t j = 0; j < n; j++)
		if (!job_valid(&jobs[j]))
			return qerr_set(err, "unpack: invalid layer job (layer id \"%.80s\")",
			                jobs[j].layer_id ? jobs[j].layer_id : "");
	struct ovl_unpacker *u = ovl_unpacker_new(st, workers, lim);
	int rc = 0;
	for (size_t j = 0; j < n && rc == 0; j++)
		rc = ovl_unpacker_add(u, &jobs[j], -1, 0, err);
	if (rc == 0)
		rc = ovl_unpacker_finish(u, err);
	ovl_unpacker_free(u);
	return rc;
}
