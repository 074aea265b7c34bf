/* Fuzz target: the layer unpacker (overlay/unpack.c): tar parsing, the entry path normaliser and the
   dir-fd walk, whiteouts, hardlinks, limits, decompression. overlay.h exports only ovl_unpack_layers, which
   forks one worker per layer (no coverage comes back from a child), so this file includes unpack.c and runs a
   worker's job, unpack_one(), in-process. With QIMG_FUZZ_UNPACK_FORK=1 (set by the gcc regression runner) each
   input also goes through the public ovl_unpack_layers, which must agree.
   Input: one mode byte, then the layer. Mode bit 0: 0 = the layer blob is the rest as is (a tar, or a
   gzip/zstd stream: the unpacker sniffs), 1 = the rest is a tar this target compresses with zstd.
   The diffID is the sha256 of the tar (of the raw rest when it is already compressed: then only a mismatch can
   come out, after the whole extraction). After each input: no partial layer, nothing left in tmp/, canaries
   beside the store unchanged; a published layer holds only files, dirs, symlinks, fifos and 0:0 whiteouts,
   allowed xattrs, and no hardlink to a file outside it. QIMG_FUZZ_VERBOSE=1 prints each outcome. */
#include "../../overlay/unpack.c"

#include <dirent.h>
#include <ftw.h>

#include "../../store/digest.h"
#include "fuzz.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define CANARY_TEXT "canary\n"

static const struct ovl_unpack_limits fuzz_limits = {
    .max_bytes = 64 << 20, .max_ratio = 0, .max_entries = 20000, .max_apparent = 64 << 20};

static int scratch_fd(void)
{
	static int fd = -1;
	if (fd < 0) {
		const char *dir = fuzz_scratch("unpack");
		fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct qerr err = {0};
		if (fd < 0 || mkdirat(fd, "canary", 0777) < 0 ||
		    write_file_atomic_at(fd, "canary/file", CANARY_TEXT, strlen(CANARY_TEXT), 0666, false, &err) < 0)
			abort();
		worker_setup(); /* what every worker does first: umask 0, UTF-8 names, fd limit */
	}
	return fd;
}

static size_t dir_count(int dirfd, const char *rel)
{
	int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	size_t n = 0;
	if (!d)
		abort();
	for (struct dirent *de; (de = readdir(d));)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* Nothing escaped next to the store, nothing partial stayed behind. */
static void check_world(struct store *st, const char *hex, bool ok)
{
	int sfd = scratch_fd();
	struct qerr err = {0};
	size_t len = 0;
	autofree char *canary = read_file_at(sfd, "canary/file", 4096, &len, &err);
	if (!canary || strcmp(canary, CANARY_TEXT) != 0 || dir_count(sfd, "canary") != 1 || dir_count(sfd, ".") != 2) {
		fprintf(stderr, "fuzz_unpack: something changed beside the store\n");
		abort();
	}
	if (dir_count(st->rootfd, "tmp") != 0) {
		fprintf(stderr, "fuzz_unpack: tmp/ not empty after the unpack\n");
		abort();
	}
	if (store_layer_exists(st, hex) != ok) {
		fprintf(stderr, "fuzz_unpack: layer %s after %s\n", ok ? "missing" : "present", ok ? "success" : "failure");
		abort();
	}
}

/* ---- what a published layer may hold ---- */

struct inode_seen {
	dev_t dev;
	ino_t ino;
	nlink_t nlink, found;
};
static struct inode_seen *seen;
static size_t nseen;
static dev_t layer_dev;
static bool layer_bad;

static void layer_fail(const char *path, const char *why)
{
	fprintf(stderr, "fuzz_unpack: layer entry %s: %s\n", path, why);
	layer_bad = true;
}

static void check_xattrs(const char *path)
{
	char names[4096];
	ssize_t n = llistxattr(path, names, sizeof names);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		const char *x = names + i;
		if (!ovl_xattr_allowed(x) && strcmp(x, OVL_OPAQUE_XATTR) != 0)
			layer_fail(path, x);
	}
}

static int visit(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag, (void)ftw;
	if (sb->st_dev != layer_dev)
		layer_fail(path, "on another file system");
	if (S_ISBLK(sb->st_mode) || S_ISSOCK(sb->st_mode) || (S_ISCHR(sb->st_mode) && !ovl_is_whiteout(sb)))
		layer_fail(path, "a device or socket other than a whiteout");
	if (!S_ISLNK(sb->st_mode))
		check_xattrs(path);
	if (!S_ISDIR(sb->st_mode) && sb->st_nlink > 1) {
		size_t i = 0;
		while (i < nseen && (seen[i].ino != sb->st_ino || seen[i].dev != sb->st_dev))
			i++;
		if (i == nseen) {
			seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
			seen[nseen++] = (struct inode_seen){sb->st_dev, sb->st_ino, sb->st_nlink, 0};
		}
		seen[i].found++;
	}
	return 0;
}

/* Only files, dirs, symlinks, fifos and whiteouts; allowed xattrs; every hardlink's other names in the layer. */
static void check_layer(struct store *st, const char *hex)
{
	autofree char *dir = xasprintf("%s/layers/%s", st->root, hex);
	struct stat sb;
	if (lstat(dir, &sb) < 0)
		abort();
	layer_dev = sb.st_dev;
	layer_bad = false;
	nseen = 0;
	if (nftw(dir, visit, 64, FTW_PHYS) < 0)
		abort();
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].found != seen[i].nlink)
			layer_fail(dir, "a hardlinked file has names outside the layer");
	if (getenv("QIMG_FUZZ_VERBOSE"))
		fprintf(stderr, "layer: %zu hardlinked inodes, all names inside\n", nseen);
	if (layer_bad)
		abort();
}

static void put_blob(struct store *st, const void *blob, size_t n, char digest[DIGEST_LEN + 1])
{
	struct qerr err = {0};
	digest_buf(blob, n, digest);
	autofree char *rel = store_blob_relpath(digest);
	if (write_file_atomic_at(st->rootfd, rel, blob, n, 0444, false, &err) < 0)
		abort();
}

static void forget(struct store *st, const char *hex, const char *blob_digest)
{
	struct qerr err = {0};
	autofree char *blob = store_blob_relpath(blob_digest);
	autofree char *json = xasprintf("layers/%s.json", hex);
	autofree char *lock = xasprintf("locks/layer-%s.lock", hex);
	autoclose int lfd = openat(st->rootfd, "layers", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || rm_rf_at(lfd, hex, &err) < 0)
		abort();
	unlinkat(st->rootfd, json, 0);
	unlinkat(st->rootfd, blob, 0);
	unlinkat(st->rootfd, lock, 0);
}

/* The worker's job, in this process: 0 or -1 (err). */
static int unpack_inproc(struct store *st, const struct ovl_layer_job *job, struct qerr *err)
{
	autofree char *tmpname = NULL;
	int tfd = store_tmp_dir(st, "unpack", &tmpname, err);
	if (tfd < 0)
		abort();
	close(tfd);
	struct ovl_unpack_limits lim = ovl_limits_resolve(&fuzz_limits); /* as ovl_unpack_layers does */
	struct task t = {.job = *job, .blobfd = -1, .gate = -1};   /* the blob is in the store, already verified */
	char map[USERNS_MAP_MAX];
	snprintf(map, sizeof map, "%s", USERNS_MAP_HOST); /* the fuzzer runs as root, outside any user namespace */
	return unpack_one(st, &t, tmpname, &lim, map, err);
}

static void *zstd_wrap(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(size);
	void *out = xmalloc(cap ? cap : 1);
	*out_len = ZSTD_compress(out, cap, data, size, 1);
	if (ZSTD_isError(*out_len))
		abort();
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *st = fuzz_store("unpack");
	char blob_digest[DIGEST_LEN + 1], diff_id[DIGEST_LEN + 1];
	struct qerr err = {0};
	if (size < 1 || size > (8 << 20))
		return 0;
	scratch_fd();
	bool wrap = data[0] & 1;
	data++, size--;
	size_t blen = size;
	autofree void *wrapped = wrap ? zstd_wrap(data, size, &blen) : NULL;
	put_blob(st, wrap ? wrapped : data, blen, blob_digest);
	digest_buf(data, size, diff_id);
	char hex[DIGEST_HEX_LEN + 1];
	snprintf(hex, sizeof hex, "%s", store_digest_hex(diff_id));
	struct ovl_layer_job job = {blob_digest, wrap ? MT_ZSTD : MT_TAR, diff_id, hex};

	int rc = unpack_inproc(st, &job, &err);
	if (rc < 0 && (!err.msg[0] || strstr(err.msg, "(null)"))) { /* every failure says what was wrong */
		fprintf(stderr, "fuzz_unpack: unhelpful error: \"%s\"\n", err.msg);
		abort();
	}
	if (getenv("QIMG_FUZZ_VERBOSE"))
		fprintf(stderr, "unpack: %s\n", rc == 0 ? "ok" : err.msg);
	check_world(st, hex, rc == 0);
	if (rc == 0)
		check_layer(st, hex);
	forget(st, hex, blob_digest);
	const char *fork_too = getenv("QIMG_FUZZ_UNPACK_FORK");
	if (fork_too && *fork_too == '1') {
		put_blob(st, wrap ? wrapped : data, blen, blob_digest);
		struct qerr ferr = {0};
		int frc = ovl_unpack_layers(st, &job, 1, 1, &fuzz_limits, &ferr);
		if ((frc == 0) != (rc == 0) || strstr(ferr.msg, "worker killed by signal") || strstr(ferr.msg, "(null)") ||
		    strstr(ferr.msg, "worker exited with status")) {
			fprintf(stderr, "fuzz_unpack: in-process: %s; ovl_unpack_layers: %s\n", rc ? err.msg : "ok",
			        frc ? ferr.msg : "ok");
			abort();
		}
		check_world(st, hex, frc == 0);
		forget(st, hex, blob_digest);
	}
	return 0;
}
