/* `qimg load`: images from a docker-archive (docker save) or an OCI layout (a directory, or a tar of one:
   oci-archive) into the store. Every blob is hashed and checked against the digest that names it, layers are
   unpacked as a pull unpacks them, and refs are set last: a load that fails leaves no ref. */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../store/digest.h"
#include "internal.h"

#define ENTRIES_MAX   100000    /* files in one archive */
#define NAME_MAX_LEN  4096      /* bytes of one path inside it */
#define LINK_DEPTH    16        /* links followed from one path */
#define COPY_BUF      (1 << 20) /* bytes per read while copying */
#define JSON_FILE_MAX (16 << 20)

#define MT_OCI_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define ANN_REF_NAME     "org.opencontainers.image.ref.name"
#define ANN_CTRD_NAME    "io.containerd.image.name"

/* One file of a tar input, copied into tmp/ and hashed while it was read. */
struct ent {
	char *path;    /* normalised: "blobs/sha256/<hex>", "manifest.json" */
	char *link;    /* a symlink or hardlink: the (normalised) path it names; else NULL */
	char *tmpname; /* its copy under tmp/ (NULL once committed or for links) */
	char digest[DIGEST_LEN + 1];
	int64_t size;
};

/* The input: a directory (dirfd >= 0) or the files of a tar (v). */
struct src {
	struct store *st;
	const char *input; /* as given, for messages */
	int dirfd;
	struct ent *v;
	size_t n;
	int64_t max_file; /* apparent size (holes included) of one file: the unpack limit --max-apparent-size */
};

/* One image found in the input, ready to publish. */
struct found {
	char manifest_digest[DIGEST_LEN + 1];
	char index_digest[DIGEST_LEN + 1]; /* "" when the image did not come through an index */
	struct platform platform;          /* the index entry's, when there was one */
	struct strv names;                 /* names the input gives it */
};

/* ---- paths ---- */

/* base + "/" + p with "." and empty components dropped and ".." applied; NULL when it leaves the root. */
static char *path_norm(const char *base, const char *p)
{
	autofree char *all = xasprintf("%s/%s", base ? base : "", p);
	struct buf out = {0};
	char *save = NULL;

	buf_append(&out, "", 0);
	for (char *c = strtok_r(all, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash = out.len ? strrchr(out.p, '/') : NULL;
			if (out.len == 0) {
				buf_free(&out);
				return NULL;
			}
			out.len = slash ? (size_t)(slash - out.p) : 0;
			out.p[out.len] = '\0';
			continue;
		}
		if (out.len)
			buf_append(&out, "/", 1);
		buf_append(&out, c, strlen(c));
	}
	if (out.len == 0) {
		buf_free(&out);
		return NULL;
	}
	return out.p;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

/* ---- reading a tar into tmp/ ---- */

static void ent_free(struct src *s, struct ent *e)
{
	if (e->tmpname) {
		autofree char *rel = xasprintf("tmp/%s", e->tmpname);
		if (unlinkat(s->st->rootfd, rel, 0) < 0 && errno != ENOENT)
			log_warn("remove %s/%s: %s", s->st->root, rel, strerror(errno));
	}
	free(e->path);
	free(e->link);
	free(e->tmpname);
	memset(e, 0, sizeof(*e));
}

static struct ent *src_find(struct src *s, const char *path)
{
	for (size_t i = s->n; i > 0; i--) /* the last of duplicate entries wins, as tar extracts it */
		if (strcmp(s->v[i - 1].path, path) == 0)
			return &s->v[i - 1];
	return NULL;
}

static struct ent *ent_new(struct src *s, char *path, struct qerr *err)
{
	struct ent *e = src_find(s, path);

	if (e) {
		ent_free(s, e);
	} else {
		if (s->n >= ENTRIES_MAX) {
			free(path);
			qerr_set(err, "%s: more than %d files", s->input, ENTRIES_MAX);
			return NULL;
		}
		s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		e = &s->v[s->n++];
		memset(e, 0, sizeof(*e));
	}
	e->path = path;
	return e;
}

static const char zeros[1 << 16];

/* Hash n zero bytes (a hole). */
static void hash_zeros(struct digester *dg, int64_t n)
{
	for (; n > 0; n -= (int64_t)sizeof zeros)
		digester_update(dg, zeros, n < (int64_t)sizeof zeros ? (size_t)n : sizeof zeros);
}

static int too_big(struct src *s, const char *path, int64_t size, struct qerr *err)
{
	return qerr_set(err,
	                "%s: %s: apparent size %lld bytes (holes included) is over the apparent-size limit of %lld "
	                "bytes (raise it with --max-apparent-size or QIMG_MAX_APPARENT_SIZE)",
	                s->input, path, (long long)size, (long long)s->max_file);
}

/* Copy the current entry's data into a tmp file, hashing it. A sparse entry's holes stay holes in the copy
   (and are hashed as the zeros they read as); its apparent size is bounded first. */
static int tar_file(struct src *s, struct archive *a, struct archive_entry *ae, struct ent *e, struct qerr *err)
{
	int64_t size = archive_entry_size(ae), pos = 0;
	if (size > s->max_file)
		return too_big(s, e->path, size, err);
	struct digester *dg = digester_new();
	autoclose int fd = store_tmp_file(s->st, "load", &e->tmpname, err);
	int rc = fd < 0 ? -1 : 0;

	while (rc == 0) {
		const void *p;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(a, &p, &n, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			rc = qerr_set(err, "%s: %s: %s", s->input, e->path, ovl_archive_error(a));
		else if (off < pos || (int64_t)n > size - off)
			rc = qerr_set(err, "%s: %s: damaged tar entry (data outside the file's %lld bytes)", s->input,
			              e->path, (long long)size);
		else if (pwrite_all(fd, p, n, off) < 0)
			rc = qerr_sys(err, "%s: write %s/tmp/%s", s->input, s->st->root, e->tmpname);
		else {
			hash_zeros(dg, off - pos);
			digester_update(dg, p, n);
			pos = off + (int64_t)n;
		}
	}
	if (rc == 0) {
		hash_zeros(dg, size - pos);
		e->size = size;
		if (ftruncate(fd, size) < 0)
			rc = qerr_sys(err, "%s: write %s/tmp/%s", s->input, s->st->root, e->tmpname);
	}
	digester_final(dg, e->digest);
	digester_free(dg);
	return rc;
}

/* Record one tar entry: regular files are copied, links remembered, everything else skipped. */
static int tar_entry(struct src *s, struct archive *a, struct archive_entry *ae, struct qerr *err)
{
	const char *name = archive_entry_pathname(ae), *hard = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);
	char *path, *target = NULL;
	struct ent *e;

	if (!name || strlen(name) > NAME_MAX_LEN)
		return qerr_set(err, "%s: an entry without a name or with a name longer than %d bytes", s->input,
		                NAME_MAX_LEN);
	if (!hard && type != AE_IFREG && type != AE_IFLNK)
		return 0;
	path = path_norm(NULL, name);
	if (!path) {
		autofree char *p = printable(name, 200);
		return qerr_set(err, "%s: entry \"%s\" leaves the archive's root", s->input, p);
	}
	if (hard) {
		target = path_norm(NULL, hard);
	} else if (type == AE_IFLNK) {
		autofree char *dir = dir_of(path);
		const char *t = archive_entry_symlink(ae);
		target = t && *t != '/' ? path_norm(dir, t) : t ? path_norm(NULL, t) : NULL;
	}
	if ((hard || type == AE_IFLNK) && !target) {
		autofree char *p = printable(path, 200);
		free(path);
		return qerr_set(err, "%s: link \"%s\" points outside the archive", s->input, p);
	}
	e = ent_new(s, path, err);
	if (!e) {
		free(target);
		return -1;
	}
	e->link = target;
	return target ? 0 : tar_file(s, a, ae, e, err);
}

static int tar_read(struct src *s, int fd, struct qerr *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	int rc = 0, r;

	if (!a)
		return qerr_set(err, "%s: libarchive: out of memory", s->input);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, COPY_BUF) != ARCHIVE_OK) {
		rc = qerr_set(err, "%s: not a tar archive (%s)", s->input, ovl_archive_error(a));
		archive_read_free(a);
		return rc;
	}
	while (rc == 0 && (r = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			rc = qerr_set(err, "%s: %s", s->input, ovl_archive_error(a));
		else
			rc = tar_entry(s, a, ae, err);
	}
	archive_read_free(a);
	return rc;
}

/* Open input: a directory, or a tar (possibly compressed) read into tmp/ once. */
static int src_open(struct src *s, struct store *st, const char *input, int64_t max_file, struct qerr *err)
{
	autoclose int fd = -1;
	struct stat sb;

	memset(s, 0, sizeof(*s));
	s->st = st;
	s->max_file = max_file;
	s->input = input;
	s->dirfd = -1;
	if (strcmp(input, "-") == 0) {
		s->input = "stdin";
		return tar_read(s, STDIN_FILENO, err);
	}
	fd = open(input, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return qerr_sys(err, "open %s", input);
	if (S_ISDIR(sb.st_mode)) {
		s->dirfd = fd;
		fd = -1;
		return 0;
	}
	return tar_read(s, fd, err);
}

static void src_close(struct src *s)
{
	for (size_t i = 0; i < s->n; i++)
		ent_free(s, &s->v[i]);
	free(s->v);
	if (s->dirfd >= 0)
		close(s->dirfd);
	memset(s, 0, sizeof(*s));
	s->dirfd = -1;
}

/* ---- files of the input ---- */

/* The tar entry for path, links followed. */
static struct ent *src_get(struct src *s, const char *path, struct qerr *err)
{
	const char *p = path;

	for (int depth = 0; depth < LINK_DEPTH; depth++) {
		struct ent *e = src_find(s, p);

		if (!e) {
			qerr_set(err, "%s: no file %s in the archive", s->input, path);
			return NULL;
		}
		if (!e->link)
			return e;
		p = e->link;
	}
	qerr_set(err, "%s: %s: more than %d levels of links", s->input, path, LINK_DEPTH);
	return NULL;
}

/* Open path below the input directory (never outside it). */
static int dir_open(struct src *s, const char *path, struct qerr *err)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, s->dirfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* no openat2: the stricter walk (no symlinks at all) */
		fd = openat_walk(s->dirfd, path, O_RDONLY);
	if (fd < 0)
		qerr_sys(err, "%s: open %s", s->input, path);
	return fd;
}

/* Open a file of the input for reading. */
static int src_open_file(struct src *s, const char *path, struct qerr *err)
{
	struct ent *e;
	autofree char *rel = NULL;
	int fd;

	if (s->dirfd >= 0)
		return dir_open(s, path, err);
	e = src_get(s, path, err);
	if (!e)
		return -1;
	if (!e->tmpname)
		return qerr_set(err, "%s: %s was already moved into the store", s->input, path);
	rel = xasprintf("tmp/%s", e->tmpname);
	fd = openat(s->st->rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		qerr_sys(err, "%s: open %s/%s", s->input, s->st->root, rel);
	return fd;
}

/* A small file of the input (JSON), NUL-terminated. */
static char *src_read(struct src *s, const char *path, size_t max, size_t *len, struct qerr *err)
{
	autoclose int fd = src_open_file(s, path, err);
	struct buf b = {0};
	char chunk[65536];

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || b.len + (size_t)(n > 0 ? n : 0) > max) {
			if (n < 0)
				qerr_sys(err, "%s: read %s", s->input, path);
			else
				qerr_set(err, "%s: %s is larger than %zu bytes", s->input, path, max);
			buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	buf_append(&b, "", 1);
	*len = b.len - 1;
	return b.p;
}

/* Hash fd, a file of the input directory, copying it to out (>= 0) with its holes kept (SEEK_DATA/SEEK_HOLE;
   holes hash as the zeros they read as); its apparent size is bounded first. */
static int hash_copy(struct src *s, int fd, int out, char digest[DIGEST_LEN + 1], int64_t *size, struct qerr *err)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return qerr_sys(err, "stat");
	if (sb.st_size > s->max_file)
		return qerr_set(err,
		                "apparent size %lld bytes (holes included) is over the apparent-size limit of %lld "
		                "bytes (raise it with --max-apparent-size or QIMG_MAX_APPARENT_SIZE)",
		                (long long)sb.st_size, (long long)s->max_file);
	struct digester *dg = digester_new();
	autofree char *buf = xmalloc(COPY_BUF);
	off_t pos = 0, start, end;
	int rc = 0, r;

	while (rc == 0 && (r = fd_data_next(fd, pos, sb.st_size, &start, &end)) > 0) {
		hash_zeros(dg, start - pos);
		for (pos = start; rc == 0 && pos < end;) {
			size_t want = end - pos < COPY_BUF ? (size_t)(end - pos) : COPY_BUF;
			ssize_t n = pread(fd, buf, want, pos);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				rc = n < 0 ? qerr_sys(err, "read") : qerr_set(err, "the file shrank while it was read");
			else if (out >= 0 && pwrite_all(out, buf, (size_t)n, pos) < 0)
				rc = qerr_sys(err, "write");
			else {
				digester_update(dg, buf, (size_t)n);
				pos += n;
			}
		}
	}
	if (rc == 0 && r < 0)
		rc = qerr_sys(err, "find data (SEEK_DATA)");
	if (rc == 0) {
		hash_zeros(dg, sb.st_size - pos);
		*size = sb.st_size;
		if (out >= 0 && ftruncate(out, sb.st_size) < 0)
			rc = qerr_sys(err, "write");
	}
	digester_final(dg, digest);
	digester_free(dg);
	return rc;
}

/* The digest and size of a file of the input. */
static int src_hash(struct src *s, const char *path, char digest[DIGEST_LEN + 1], int64_t *size, struct qerr *err)
{
	struct ent *e;
	autoclose int fd = -1;

	if (s->dirfd < 0) {
		e = src_get(s, path, err);
		if (!e)
			return -1;
		strcpy(digest, e->digest);
		*size = e->size;
		return 0;
	}
	fd = dir_open(s, path, err);
	if (fd < 0 || hash_copy(s, fd, -1, digest, size, err) < 0)
		return qerr_wrap(err, "%s: %s: ", s->input, path);
	return 0;
}

static int mismatch(struct src *s, const char *path, const char *want, const char *got, int64_t want_size, int64_t size,
                    struct qerr *err)
{
	if (strcmp(want, got) != 0)
		return qerr_set(err,
		                "%s: %s: digest mismatch: the content hashes to %s, expected %s (the archive is "
		                "corrupt or was modified)",
		                s->input, path, got, want);
	if (want_size >= 0 && want_size != size)
		return qerr_set(err, "%s: %s: %lld bytes, its descriptor says %lld", s->input, path, (long long)size,
		                (long long)want_size);
	return 0;
}

/* Commit a tar entry's tmp copy as blob digest (verified while it was read). */
static int tar_commit(struct src *s, const char *path, const char *digest, int64_t want_size, struct qerr *err)
{
	struct ent *e = src_get(s, path, err);
	autofree char *rel = NULL;
	autoclose int fd = -1;

	if (!e || mismatch(s, path, digest, e->digest, want_size, e->size, err) < 0)
		return -1;
	if (!e->tmpname || store_blob_exists(s->st, digest))
		return 0;
	rel = xasprintf("tmp/%s", e->tmpname);
	fd = openat(s->st->rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_sys(err, "%s: open %s/%s", s->input, s->st->root, rel);
	if (store_blob_commit(s->st, fd, e->tmpname, digest, err) < 0)
		return -1;
	free(e->tmpname);
	e->tmpname = NULL;
	return 0;
}

/* Copy a file of the input directory into the store as blob digest, verifying it on the way. */
static int dir_commit(struct src *s, const char *path, const char *digest, int64_t want_size, struct qerr *err)
{
	autoclose int in = dir_open(s, path, err), out = -1;
	autofree char *name = NULL, *rel = NULL;
	char got[DIGEST_LEN + 1];
	int64_t size;
	int rc;

	if (in < 0)
		return -1;
	out = store_tmp_file(s->st, "load", &name, err);
	if (out < 0)
		return -1;
	rel = xasprintf("tmp/%s", name);
	rc = hash_copy(s, in, out, got, &size, err);
	if (rc < 0)
		qerr_wrap(err, "%s: %s: ", s->input, path);
	if (rc == 0)
		rc = mismatch(s, path, digest, got, want_size, size, err);
	if (rc == 0 && !store_blob_exists(s->st, digest))
		rc = store_blob_commit(s->st, out, name, digest, err);
	else
		unlinkat(s->st->rootfd, rel, 0);
	return rc;
}

/* Put the input's file path into the store as blob digest (want_size < 0: any size), verified. */
static int src_commit(struct src *s, const char *path, const char *digest, int64_t want_size, struct qerr *err)
{
	return s->dirfd >= 0 ? dir_commit(s, path, digest, want_size, err)
	                     : tar_commit(s, path, digest, want_size, err);
}

/* Store bytes we made (a synthesized manifest) as a blob. */
static int blob_put_bytes(struct store *st, const char *data, size_t len, char digest[DIGEST_LEN + 1], struct qerr *err)
{
	autofree char *name = NULL, *rel = NULL;
	autoclose int fd = -1;
	int rc;

	digest_buf(data, len, digest);
	if (store_blob_exists(st, digest))
		return 0;
	fd = store_tmp_file(st, "load", &name, err);
	if (fd < 0)
		return -1;
	rel = xasprintf("tmp/%s", name);
	rc = write_all(fd, data, len) < 0 ? qerr_sys(err, "store: write %s/%s", st->root, rel)
	                                  : store_blob_commit(st, fd, name, digest, err);
	if (rc < 0)
		unlinkat(st->rootfd, rel, 0);
	return rc;
}

/* ---- OCI layouts ---- */

static char *blob_path(const char *digest)
{
	return xasprintf("blobs/sha256/%s", store_digest_hex(digest));
}

static int commit_desc(struct src *s, const struct descriptor *d, struct qerr *err)
{
	autofree char *path = blob_path(d->digest);
	return src_commit(s, path, d->digest, d->size, err);
}

/* Commit an image manifest's blobs: the manifest itself, its config, its layers. */
static int oci_image_blobs(struct src *s, const struct descriptor *d, struct qerr *err)
{
	size_t len = 0;
	autofree char *data = NULL;
	enum manifest_kind kind;
	struct manifest m;
	struct index ix;
	int rc = 0;

	if (commit_desc(s, d, err) < 0)
		return -1;
	data = store_blob_read(s->st, d->digest, MANIFEST_MAX, &len, err);
	if (!data)
		return -1;
	if (manifest_parse(data, len, d->media_type, &kind, &m, &ix, err) < 0)
		return qerr_wrap(err, "%s: manifest %s: ", s->input, d->digest);
	if (kind != MANIFEST_IMAGE) {
		index_free(&ix);
		return qerr_set(err, "%s: manifest %s: an index where an image was expected", s->input, d->digest);
	}
	rc = commit_desc(s, &m.config, err);
	for (size_t i = 0; i < m.nlayers && rc == 0; i++)
		rc = commit_desc(s, &m.layers[i], err);
	manifest_free(&m);
	return rc;
}

static bool is_index_mt(const char *mt)
{
	return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool is_image_mt(const char *mt)
{
	return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

/* A nested index: commit it, pick this machine's image from it. */
static int oci_from_index(struct src *s, const struct descriptor *d, struct found *f, struct qerr *err)
{
	size_t len = 0;
	autofree char *data = NULL;
	enum manifest_kind kind;
	struct manifest m;
	struct index ix;
	struct platform want = {0};
	const struct descriptor *pick;
	int rc;

	if (commit_desc(s, d, err) < 0)
		return -1;
	data = store_blob_read(s->st, d->digest, MANIFEST_MAX, &len, err);
	if (!data || manifest_parse(data, len, d->media_type, &kind, &m, &ix, err) < 0)
		return qerr_wrap(err, "%s: index %s: ", s->input, d->digest);
	if (kind != MANIFEST_INDEX) {
		manifest_free(&m);
		return qerr_set(err, "%s: %s: an image where an index was expected", s->input, d->digest);
	}
	platform_host(&want);
	pick = index_select(&ix, &want, err);
	rc = pick ? 0 : qerr_wrap(err, "%s: index %s: ", s->input, d->digest);
	if (rc == 0 && !is_image_mt(pick->media_type))
		rc = qerr_set(err, "%s: index %s: the entry for this machine is not an image", s->input, d->digest);
	if (rc == 0)
		rc = oci_image_blobs(s, pick, err);
	if (rc == 0) {
		strcpy(f->manifest_digest, pick->digest);
		strcpy(f->index_digest, d->digest);
		platform_set(&f->platform, pick->platform.os, pick->platform.arch, pick->platform.variant);
	}
	platform_free(&want);
	index_free(&ix);
	return rc;
}

/* The names index.json's entry i gives: containerd's full name, else the OCI ref.name. */
static void oci_entry_names(json_t *index, size_t i, struct strv *names)
{
	json_t *ann = json_object_get(json_array_get(json_object_get(index, "manifests"), i), "annotations");
	const char *full = json_string_value(json_object_get(ann, ANN_CTRD_NAME));
	const char *ref = json_string_value(json_object_get(ann, ANN_REF_NAME));

	if (full && *full)
		strv_push(names, full);
	else if (ref && *ref)
		strv_push(names, ref);
}

static void found_free(struct found *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		platform_free(&f[i].platform);
		strv_free(&f[i].names);
	}
	free(f);
}

static int oci_load(struct src *s, struct found **out, size_t *nout, struct qerr *err)
{
	size_t len = 0;
	autofree char *data = src_read(s, "index.json", MANIFEST_MAX, &len, err);
	json_t *j = data ? pjson_parse_object(data, len, "index.json", err) : NULL;
	enum manifest_kind kind;
	struct manifest m;
	struct index ix;
	struct found *f;
	size_t n = 0;
	int rc = 0;

	if (!j || manifest_parse(data, len, NULL, &kind, &m, &ix, err) < 0) {
		json_decref(j);
		return data ? qerr_wrap(err, "%s: index.json: ", s->input) : -1;
	}
	if (kind != MANIFEST_INDEX) {
		manifest_free(&m);
		json_decref(j);
		return qerr_set(err, "%s: index.json is not an image index", s->input);
	}
	f = xcalloc(ix.n + 1, sizeof(*f));
	for (size_t i = 0; i < ix.n && rc == 0; i++) {
		const struct descriptor *d = &ix.manifests[i];

		if (is_index_mt(d->media_type)) {
			rc = oci_from_index(s, d, &f[n], err);
		} else if (is_image_mt(d->media_type)) {
			rc = oci_image_blobs(s, d, err);
			strcpy(f[n].manifest_digest, d->digest);
		} else {
			log_info("%s: skipping index.json entry %zu (%s)", s->input, i, d->media_type);
			continue;
		}
		oci_entry_names(j, i, &f[n].names);
		n++;
	}
	index_free(&ix);
	json_decref(j);
	if (rc == 0 && n == 0)
		rc = qerr_set(err, "%s: index.json lists no image", s->input);
	if (rc < 0) {
		found_free(f, n);
		return -1;
	}
	*out = f;
	*nout = n;
	return 0;
}

/* ---- docker-archive (docker save: manifest.json, repositories, config and layer files) ---- */

/* "<64 hex>.json" or "blobs/sha256/<64 hex>": the digest the file's name claims, or NULL. */
static char *claimed_digest(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strspn(base, "0123456789abcdef");
	autofree char *d = xasprintf("sha256:%.*s", (int)n, base);

	if (n != DIGEST_HEX_LEN || !store_digest_valid(d))
		return NULL;
	if (strcmp(base + n, ".json") == 0 || (base[n] == '\0' && strncmp(path, "blobs/sha256/", 13) == 0))
		return xstrdup(d);
	return NULL;
}

/* The OCI media type of a layer file, from its first bytes (docker save writes plain tars). */
static int layer_media_type(struct src *s, const char *path, const char **mt, struct qerr *err)
{
	autoclose int fd = src_open_file(s, path, err);
	unsigned char m[4] = {0};

	if (fd < 0)
		return -1;
	if (pread(fd, m, sizeof(m), 0) < 0)
		return qerr_sys(err, "%s: read %s", s->input, path);
	if (m[0] == 0x1f && m[1] == 0x8b)
		*mt = "application/vnd.oci.image.layer.v1.tar+gzip";
	else if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		*mt = "application/vnd.oci.image.layer.v1.tar+zstd";
	else
		*mt = MT_OCI_LAYER_TAR;
	return 0;
}

static json_t *desc_json(const char *mt, const char *digest, int64_t size)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
}

/* Check one layer, commit it, describe it in layers. */
static int docker_layer(struct src *s, const char *path, const char *diff_id, json_t *layers, struct qerr *err)
{
	char digest[DIGEST_LEN + 1];
	const char *mt = NULL;
	int64_t size;

	if (src_hash(s, path, digest, &size, err) < 0 || layer_media_type(s, path, &mt, err) < 0)
		return -1;
	if (strcmp(mt, MT_OCI_LAYER_TAR) == 0 && strcmp(digest, diff_id) != 0)
		return qerr_set(err,
		                "%s: layer %s hashes to %s, but the config says its diff_id is %s (the archive is "
		                "corrupt or was modified)",
		                s->input, path, digest, diff_id);
	if (src_commit(s, path, digest, size, err) < 0)
		return -1;
	json_array_append_new(layers, desc_json(mt, digest, size));
	return 0;
}

/* The config of one manifest.json entry: verified against the digest its name claims, committed, parsed. */
static int docker_config(struct src *s, const char *path, json_t *manifest, struct image_config *cfg, struct qerr *err)
{
	char digest[DIGEST_LEN + 1];
	autofree char *claim = claimed_digest(path), *data = NULL;
	size_t len = 0;
	int64_t size;

	if (src_hash(s, path, digest, &size, err) < 0)
		return -1;
	if (claim && mismatch(s, path, claim, digest, -1, size, err) < 0)
		return -1;
	if (size > CONFIG_MAX)
		return qerr_set(err, "%s: config %s is larger than %d bytes", s->input, path, CONFIG_MAX);
	data = src_read(s, path, CONFIG_MAX, &len, err);
	if (!data || image_config_parse(data, len, cfg, err) < 0)
		return data ? qerr_wrap(err, "%s: config %s: ", s->input, path) : -1;
	if (src_commit(s, path, digest, size, err) < 0)
		return -1;
	json_object_set_new(manifest, "config", desc_json(MT_OCI_CONFIG, digest, size));
	return 0;
}

/* One entry of manifest.json -> an OCI manifest in the store. */
static int docker_image(struct src *s, json_t *item, size_t i, struct found *f, struct qerr *err)
{
	const char *cfgpath = json_string_value(json_object_get(item, "Config"));
	json_t *lays = json_object_get(item, "Layers"), *tags = json_object_get(item, "RepoTags");
	json_t *m = json_pack("{s:i, s:s}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST);
	json_t *layers = json_array();
	struct image_config cfg = {0};
	autofree char *cp = cfgpath ? path_norm(NULL, cfgpath) : NULL, *text = NULL;
	int rc;

	if (!cp || !json_is_array(lays) || json_array_size(lays) == 0 || json_array_size(lays) > LAYERS_MAX)
		rc = qerr_set(err, "%s: manifest.json[%zu]: needs \"Config\" and 1..%d \"Layers\"", s->input, i,
		              LAYERS_MAX);
	else
		rc = docker_config(s, cp, m, &cfg, err);
	if (rc == 0 && cfg.diff_ids.n != json_array_size(lays))
		rc = qerr_set(err, "%s: %s has %zu diff_ids for %zu layers", s->input, cp, cfg.diff_ids.n,
		              json_array_size(lays));
	for (size_t k = 0; rc == 0 && k < json_array_size(lays); k++) {
		const char *lp = json_string_value(json_array_get(lays, k));
		autofree char *p = lp ? path_norm(NULL, lp) : NULL;

		rc = p ? docker_layer(s, p, cfg.diff_ids.v[k], layers, err)
		       : qerr_set(err, "%s: manifest.json[%zu]: Layers[%zu] is not a path", s->input, i, k);
	}
	json_object_set_new(m, "layers", layers);
	if (rc == 0 && !(text = json_dumps(m, JSON_COMPACT)))
		rc = qerr_set(err, "%s: cannot encode the manifest", s->input);
	if (rc == 0)
		rc = blob_put_bytes(s->st, text, strlen(text), f->manifest_digest, err);
	for (size_t k = 0; rc == 0 && k < json_array_size(tags); k++)
		if (json_is_string(json_array_get(tags, k)))
			strv_push(&f->names, json_string_value(json_array_get(tags, k)));
	image_config_free(&cfg);
	json_decref(m);
	return rc;
}

static int docker_load(struct src *s, struct found **out, size_t *nout, struct qerr *err)
{
	size_t len = 0, n = 0;
	autofree char *data = src_read(s, "manifest.json", JSON_FILE_MAX, &len, err);
	json_error_t je;
	json_t *arr;
	struct found *f;
	int rc = 0;

	if (!data)
		return -1;
	if (!json_depth_ok(data, len, JSON_MAX_DEPTH))
		return qerr_set(err, "%s: manifest.json: nested too deeply", s->input);
	arr = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > INDEX_MAX) {
		json_decref(arr);
		return qerr_set(err, "%s: manifest.json: not a list of images%s%s", s->input, arr ? "" : ": ",
		                arr ? "" : je.text);
	}
	f = xcalloc(json_array_size(arr), sizeof(*f));
	for (; n < json_array_size(arr) && rc == 0; n++)
		rc = docker_image(s, json_array_get(arr, n), n, &f[n], err);
	json_decref(arr);
	if (rc < 0) {
		found_free(f, n);
		return -1;
	}
	*out = f;
	*nout = n;
	return 0;
}

/* ---- names and refs ---- */

/* "localhost/<input's base name without .tar...>" for an image the input gives no name. */
static char *default_name(const char *input)
{
	autofree char *copy = xstrdup(input);
	char *base, *dot;
	struct buf b = {0};

	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
	dot = strchr(base, '.');
	if (dot && dot != base)
		*dot = '\0';
	buf_append(&b, "localhost/", 10);
	for (char *p = base; *p; p++) {
		char c = (char)tolower((unsigned char)*p);
		c = isalnum((unsigned char)c) || ((c == '.' || c == '_' || c == '-') && b.len > 10) ? c : '-';
		if (c != '-' || b.len > 10)
			buf_append(&b, &c, 1);
	}
	if (b.len == 10)
		buf_append(&b, "image", 5);
	buf_append(&b, ":latest", 7);
	return b.p;
}

/* Point name at the image; the full "domain/path:tag" goes to loaded. */
static int ref_point(struct store *st, const char *name, const char *manifest_digest, struct strv *loaded,
                     struct qerr *err)
{
	struct image_ref ref;
	autofree char *rn = NULL;
	int rc;

	if (ref_parse(name, &ref, err) < 0)
		return qerr_wrap(err, "image name \"%s\": ", name);
	if (ref.digest && strcmp(ref.digest, manifest_digest) != 0) {
		rc = qerr_set(err, "image name %s names another digest than the image's (%s)", name, manifest_digest);
	} else {
		rn = ref_name(&ref);
		rc = store_ref_set(st, rn, ref.tag ? ref.tag : manifest_digest, manifest_digest, err);
		if (rc == 0)
			strv_push_take(loaded, ref.tag ? xasprintf("%s:%s", rn, ref.tag)
			                               : xasprintf("%s@%s", rn, manifest_digest));
	}
	ref_free(&ref);
	return rc;
}

static int refs_set(struct src *s, const struct found *f, const char *tag, struct strv *loaded, struct qerr *err)
{
	autofree char *dflt = NULL;

	if (tag)
		return ref_point(s->st, tag, f->manifest_digest, loaded, err);
	for (size_t i = 0; i < f->names.n; i++)
		if (ref_point(s->st, f->names.v[i], f->manifest_digest, loaded, err) < 0)
			return -1;
	if (f->names.n > 0)
		return 0;
	dflt = default_name(s->input);
	log_warn("%s: the archive names no image; loaded as %s (use --tag NAME to choose)", s->input, dflt);
	return ref_point(s->st, dflt, f->manifest_digest, loaded, err);
}

/* Names are checked before anything is unpacked, so a bad --tag costs nothing. */
static int names_check(const struct found *f, size_t n, const char *tag, struct qerr *err)
{
	struct image_ref ref;

	if (tag && n > 1)
		return qerr_set(err, "--tag: the archive holds %zu images; --tag needs exactly one", n);
	if (tag) {
		if (ref_parse(tag, &ref, err) < 0)
			return qerr_wrap(err, "--tag %s: ", tag);
		ref_free(&ref);
	}
	(void)f;
	return 0;
}

/* ---- the load ---- */

static int publish_all(struct src *s, struct found *f, size_t n, const char *tag, const struct ovl_unpack_limits *lim,
                       struct strv *loaded, struct qerr *err)
{
	for (size_t i = 0; i < n; i++) {
		struct image_spec spec;

		if (pull_publish_stored(s->st, f[i].manifest_digest, f[i].index_digest[0] ? f[i].index_digest : NULL,
		                        f[i].index_digest[0] ? &f[i].platform : NULL, lim, &spec, err) < 0)
			return qerr_wrap(err, "%s: ", s->input);
		store_spec_free(&spec);
	}
	for (size_t i = 0; i < n; i++)
		if (refs_set(s, &f[i], tag, loaded, err) < 0)
			return -1;
	return 0;
}

static bool src_has(struct src *s, const char *path)
{
	struct qerr ignored;
	autoclose int fd = -1;

	if (s->dirfd < 0)
		return src_find(s, path) != NULL;
	fd = dir_open(s, path, &ignored);
	return fd >= 0;
}

int load_image(struct store *st, const char *input, const char *tag, const struct ovl_unpack_limits *lim,
               struct strv *loaded, struct qerr *err)
{
	struct src s;
	struct found *f = NULL;
	size_t n = 0;
	int lock = store_lock(st, false, true, err), rc;

	if (lock < 0)
		return -1;
	rc = src_open(&s, st, input, ovl_limits_resolve(lim).max_apparent, err);
	if (rc == 0 && src_has(&s, "index.json"))
		rc = oci_load(&s, &f, &n, err);
	else if (rc == 0 && src_has(&s, "manifest.json"))
		rc = docker_load(&s, &f, &n, err);
	else if (rc == 0)
		rc =
		    qerr_set(err, "%s: neither an OCI layout (index.json) nor a docker-archive (manifest.json)", input);
	if (rc == 0)
		rc = names_check(f, n, tag, err);
	if (rc == 0)
		rc = publish_all(&s, f, n, tag, lim, loaded, err);
	found_free(f, n);
	src_close(&s);
	close(lock);
	return rc;
}
