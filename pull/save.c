/* `qimg save`: images of the store as an oci-archive (a tar of an OCI image layout), which skopeo, podman load
   and qimg load read. The blobs are copied byte for byte, so every digest stays what the registry served. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

#define COPY_BUF      (1 << 20)
#define HOLE_BLOCK    4096
#define ANN_REF_NAME  "org.opencontainers.image.ref.name"
#define ANN_CTRD_NAME "io.containerd.image.name"

/* Where the archive goes. A regular file (not O_APPEND) gets its all-zero 4 KiB blocks as holes: the bytes read
   back the same, and a blob with holes (a sparse tar entry kept by load) costs no disk in the saved archive. */
struct sink {
	int fd;
	bool holes;
	off_t pos;            /* offset in the file of blk[0] */
	char blk[HOLE_BLOCK]; /* bytes up to the next HOLE_BLOCK boundary of the file, not yet written */
	size_t have;
};

struct saver {
	struct store *st;
	struct archive *a;
	struct sink out;
	struct strv written; /* blob digests already in the archive */
	char *buf;
};

static int ar_fail(struct saver *w, const char *what, struct qerr *err)
{
	return qerr_set(err, "save: write %s: %s", what, ovl_archive_error(w->a));
}

static int ar_header(struct saver *w, const char *path, mode_t type, int64_t size, struct qerr *err)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, type == AE_IFDIR ? 0 : size);
	archive_entry_set_mtime(e, 0, 0); /* the same image saves to the same bytes */
	r = archive_write_header(w->a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : ar_fail(w, path, err);
}

static int ar_file(struct saver *w, const char *path, const void *data, size_t len, struct qerr *err)
{
	if (ar_header(w, path, AE_IFREG, (int64_t)len, err) < 0)
		return -1;
	return archive_write_data(w->a, data, len) == (la_ssize_t)len ? 0 : ar_fail(w, path, err);
}

/* Copy blob digest from the store into the archive (once); its size into *size when size != NULL. */
static int ar_blob(struct saver *w, const char *digest, int64_t *size, struct qerr *err)
{
	autofree char *path = xasprintf("blobs/sha256/%s", store_digest_hex(digest));
	autoclose int fd = store_blob_open(w->st, digest, err);
	struct stat sb;
	int64_t left;

	if (fd < 0)
		return qerr_wrap(err, "save: ");
	if (fstat(fd, &sb) < 0)
		return qerr_sys(err, "save: stat blob %s", digest);
	if (size)
		*size = sb.st_size;
	for (size_t i = 0; i < w->written.n; i++)
		if (strcmp(w->written.v[i], digest) == 0)
			return 0;
	if (ar_header(w, path, AE_IFREG, sb.st_size, err) < 0)
		return -1;
	for (left = sb.st_size; left > 0;) {
		ssize_t n = read(fd, w->buf, COPY_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? qerr_sys(err, "save: read blob %s", digest)
			             : qerr_set(err, "save: blob %s is shorter than it was", digest);
		if (n > left)
			n = (ssize_t)left;
		if (archive_write_data(w->a, w->buf, (size_t)n) != n)
			return ar_fail(w, path, err);
		left -= n;
	}
	strv_push(&w->written, digest);
	return 0;
}

/* One image: its manifest, config and layer blobs; its entry (with names) appended to manifests. */
static int save_one(struct saver *w, const struct save_image *img, json_t *manifests, struct qerr *err)
{
	size_t len = 0;
	autofree char *data = store_blob_read(w->st, img->manifest_digest, MANIFEST_MAX, &len, err);
	enum manifest_kind kind;
	struct manifest m;
	struct index ix;
	int64_t size = 0;
	int rc;
	json_t *e;

	if (!data || manifest_parse(data, len, NULL, &kind, &m, &ix, err) < 0)
		return qerr_wrap(err, "save: manifest %s: ", img->manifest_digest);
	if (kind != MANIFEST_IMAGE) {
		index_free(&ix);
		return qerr_set(err, "save: %s is an index, not an image", img->manifest_digest);
	}
	rc = ar_blob(w, m.config.digest, NULL, err);
	for (size_t i = 0; i < m.nlayers && rc == 0; i++)
		rc = ar_blob(w, m.layers[i].digest, NULL, err);
	if (rc == 0)
		rc = ar_blob(w, img->manifest_digest, &size, err);
	if (rc == 0) {
		e = json_pack("{s:s, s:s, s:I}", "mediaType", m.media_type, "digest", img->manifest_digest, "size",
		              (json_int_t)size);
		if (img->name)
			json_object_set_new(e, "annotations",
			                    json_pack("{s:s, s:s}", ANN_REF_NAME, img->name, ANN_CTRD_NAME, img->name));
		json_array_append_new(manifests, e);
	}
	manifest_free(&m);
	return rc;
}

static int save_layout(struct saver *w, const struct save_image *v, size_t n, struct qerr *err)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	json_t *manifests = json_array(), *index;
	autofree char *text = NULL;
	int rc = 0;

	if (ar_header(w, "blobs/", AE_IFDIR, 0, err) < 0 || ar_header(w, "blobs/sha256/", AE_IFDIR, 0, err) < 0 ||
	    ar_file(w, "oci-layout", layout, strlen(layout), err) < 0) {
		json_decref(manifests);
		return -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = save_one(w, &v[i], manifests, err);
	index = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX, "manifests", manifests);
	if (rc == 0 && !(text = json_dumps(index, JSON_COMPACT)))
		rc = qerr_set(err, "save: cannot encode index.json");
	if (rc == 0)
		rc = ar_file(w, "index.json", text, strlen(text), err);
	json_decref(index);
	return rc;
}

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Write the block gathered so far, unless it is a whole aligned block of zeros (then it stays a hole). */
static int sink_flush(struct sink *k)
{
	bool whole = k->pos % HOLE_BLOCK == 0 && k->have == HOLE_BLOCK;
	if (k->have && !(whole && all_zero(k->blk, k->have)) && pwrite_all(k->fd, k->blk, k->have, k->pos) < 0)
		return -1;
	k->pos += (off_t)k->have;
	k->have = 0;
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *client, const void *data, size_t len)
{
	struct sink *k = client;
	const char *p = data;

	if (!k->holes) {
		if (write_all(k->fd, p, len) == 0)
			return (la_ssize_t)len;
		archive_set_error(a, errno, "%s", strerror(errno));
		return -1;
	}
	for (size_t done = 0, n; done < len; done += n) {
		size_t room = HOLE_BLOCK - (size_t)((k->pos + (off_t)k->have) % HOLE_BLOCK);
		n = room < len - done ? room : len - done;
		memcpy(k->blk + k->have, p + done, n);
		k->have += n;
		if (n == room && sink_flush(k) < 0) {
			archive_set_error(a, errno, "%s", strerror(errno));
			return -1;
		}
	}
	return (la_ssize_t)len;
}

/* The last partial block; holes at the end of the file become its size. */
static int sink_close(struct archive *a, void *client)
{
	struct sink *k = client;
	struct stat sb;

	/* (and the fd's offset where write() would have left it, for whoever writes to it next) */
	if (k->holes && (sink_flush(k) < 0 || fstat(k->fd, &sb) < 0 ||
	                 (sb.st_size < k->pos && ftruncate(k->fd, k->pos) < 0) || lseek(k->fd, k->pos, SEEK_SET) < 0)) {
		archive_set_error(a, errno, "%s", strerror(errno));
		return ARCHIVE_FATAL;
	}
	return ARCHIVE_OK;
}

/* As archive_write_open_fd: the last block is padded to a whole block on a pipe, a device and standard output,
   not in another regular file. */
static int sink_open(struct saver *w, int fd)
{
	struct stat sb;
	int fl = fcntl(fd, F_GETFL);

	w->out.fd = fd;
	if (fstat(fd, &sb) < 0 || fl < 0) {
		archive_set_error(w->a, errno, "%s", strerror(errno));
		return ARCHIVE_FATAL;
	}
	w->out.pos = S_ISREG(sb.st_mode) ? lseek(fd, 0, SEEK_CUR) : -1;
	w->out.holes = S_ISREG(sb.st_mode) && !(fl & O_APPEND) && w->out.pos >= 0;
	if (!w->out.holes)
		w->out.pos = 0;
	if (archive_write_set_bytes_in_last_block(w->a, S_ISREG(sb.st_mode) && fd != STDOUT_FILENO ? 1 : 0) !=
	    ARCHIVE_OK)
		return ARCHIVE_FATAL;
	return archive_write_open(w->a, &w->out, NULL, sink_write, sink_close);
}

int save_images(struct store *st, const struct save_image *v, size_t n, int fd, struct qerr *err)
{
	struct saver w = {.st = st, .a = archive_write_new(), .buf = xmalloc(COPY_BUF)};
	int rc = -1;

	if (!w.a)
		qerr_set(err, "save: libarchive: out of memory");
	else if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK || sink_open(&w, fd) != ARCHIVE_OK)
		ar_fail(&w, "archive", err);
	else
		rc = save_layout(&w, v, n, err);
	if (w.a && archive_write_close(w.a) != ARCHIVE_OK && rc == 0)
		rc = ar_fail(&w, "archive", err);
	if (w.a)
		archive_write_free(w.a);
	strv_free(&w.written);
	free(w.buf);
	return rc;
}

int save_images_file(struct store *st, const struct save_image *v, size_t n, const char *path, struct qerr *err)
{
	autofree char *copy = xstrdup(path), *tmp = NULL;
	char *slash = strrchr(copy, '/');
	char rnd[9];
	int fd, rc;

	random_hex(rnd, 8);
	rnd[8] = '\0';
	if (slash)
		*slash = '\0';
	tmp =
	    slash ? xasprintf("%s/.%s.tmp-%s", *copy ? copy : "/", slash + 1, rnd) : xasprintf(".%s.tmp-%s", copy, rnd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return qerr_sys(err, "save: create %s", tmp);
	rc = save_images(st, v, n, fd, err);
	if (rc == 0 && fsync(fd) < 0)
		rc = qerr_sys(err, "save: fsync %s", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = qerr_sys(err, "save: close %s", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = qerr_sys(err, "save: rename %s to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}
