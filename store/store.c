/* The on-disk store: root resolution, layout, blobs, image refs, run specs, layers and locks (libc only). */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPEC_MAX   (4u << 20)
#define SPEC_MAGIC "qimg-spec 1"

static const char *const layout_dirs[] = {"blobs", "blobs/sha256", "layers", "images", "specs",
                                          "tmp",   "runs",         "locks",  NULL};

char *store_default_root(const char *opt)
{
	if (opt && *opt)
		return xstrdup(opt);
	const char *env = getenv("QIMG_STORE");
	if (env && *env)
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/qimg");
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg == '/')
		return xasprintf("%s/qimg", xdg);
	const char *home = getenv("HOME");
	if (home && *home == '/')
		return xasprintf("%s/.local/share/qimg", home);
	autofree char *pwhome = NULL;
	(void)passwd_entry(getuid(), NULL, &pwhome);
	return xasprintf("%s/.local/share/qimg", pwhome && *pwhome == '/' ? pwhome : "");
}

int store_open(struct store *st, const char *root_opt, struct qerr *err)
{
	memset(st, 0, sizeof *st);
	st->rootfd = -1;
	autofree char *root = store_default_root(root_opt);
	if (root[0] != '/') {
		char cwd[4096];
		if (!getcwd(cwd, sizeof cwd))
			return qerr_sys(err, "store: getcwd");
		char *abs = xasprintf("%s/%s", cwd, root);
		free(root);
		root = abs;
	}
	/* An existing store is opened with two syscalls: every `qimg run` comes through here. */
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdir_p(root, 0700, err) < 0)
			return qerr_wrap(err, "store %s: ", root);
		fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return qerr_sys(err, "store: open %s", root);
	size_t ndirs = sizeof layout_dirs / sizeof layout_dirs[0] - 1;
	struct stat sb; /* the layout is made in order: its last directory present means all are */
	bool laid_out = fstatat(fd, layout_dirs[ndirs - 1], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
	for (const char *const *d = layout_dirs; !laid_out && *d; d++) {
		if (mkdirat(fd, *d, 0700) < 0 && errno != EEXIST) {
			qerr_sys(err, "store: mkdir %s/%s", root, *d);
			close(fd);
			return -1;
		}
	}
	st->root = root;
	root = NULL;
	st->rootfd = fd;
	st->rootless = geteuid() != 0;
	return 0;
}

void store_close(struct store *st)
{
	if (st->rootfd >= 0)
		close(st->rootfd);
	free(st->root);
	st->root = NULL;
	st->rootfd = -1;
}

bool store_digest_valid(const char *digest)
{
	return digest && strncmp(digest, "sha256:", 7) == 0 && hex_exact(digest + 7, DIGEST_HEX_LEN);
}

const char *store_digest_hex(const char *digest)
{
	return digest + 7;
}

char *store_blob_relpath(const char *digest)
{
	return xasprintf("blobs/sha256/%s", store_digest_hex(digest));
}

bool store_blob_exists(struct store *st, const char *digest)
{
	if (!store_digest_valid(digest))
		return false;
	autofree char *rel = store_blob_relpath(digest);
	return faccessat(st->rootfd, rel, F_OK, AT_EACCESS) == 0;
}

int store_blob_open(struct store *st, const char *digest, struct qerr *err)
{
	if (!store_digest_valid(digest))
		return qerr_set(err, "invalid digest \"%s\"", digest ? digest : "");
	autofree char *rel = store_blob_relpath(digest);
	int fd = openat(st->rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_sys(err, "blob %s", digest);
	return fd;
}

char *store_blob_read(struct store *st, const char *digest, size_t max, size_t *len, struct qerr *err)
{
	if (!store_digest_valid(digest)) {
		qerr_set(err, "invalid digest \"%s\"", digest ? digest : "");
		return NULL;
	}
	autofree char *rel = store_blob_relpath(digest);
	char *data = read_file_at(st->rootfd, rel, max, len, err);
	if (!data)
		qerr_wrap(err, "blob %s: ", digest);
	return data;
}

static char *tmp_name(const char *what)
{
	char rnd[17];
	random_hex(rnd, 16);
	return xasprintf("%s-%d-%s", what, (int)getpid(), rnd);
}

int store_tmp_file(struct store *st, const char *what, char **name_out, struct qerr *err)
{
	char *name = tmp_name(what);
	autofree char *rel = xasprintf("tmp/%s", name);
	int fd = openat(st->rootfd, rel, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		qerr_sys(err, "store: create %s/%s", st->root, rel);
		free(name);
		return -1;
	}
	*name_out = name;
	return fd;
}

int store_tmp_dir(struct store *st, const char *what, char **name_out, struct qerr *err)
{
	char *name = tmp_name(what);
	autofree char *rel = xasprintf("tmp/%s", name);
	if (mkdirat(st->rootfd, rel, 0755) < 0) {
		qerr_sys(err, "store: mkdir %s/%s", st->root, rel);
		free(name);
		return -1;
	}
	int fd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		qerr_sys(err, "store: open %s/%s", st->root, rel);
		unlinkat(st->rootfd, rel, AT_REMOVEDIR);
		free(name);
		return -1;
	}
	*name_out = name;
	return fd;
}

int store_blob_commit(struct store *st, int fd, const char *tmpname, const char *digest, struct qerr *err)
{
	if (!store_digest_valid(digest))
		return qerr_set(err, "store: invalid digest \"%s\"", digest ? digest : "");
	autofree char *from = xasprintf("tmp/%s", tmpname);
	autofree char *to = store_blob_relpath(digest);
	if (fsync(fd) < 0)
		return qerr_sys(err, "store: fsync %s", from);
	if (fchmod(fd, 0444) < 0)
		return qerr_sys(err, "store: chmod %s", from);
	if (renameat(st->rootfd, from, st->rootfd, to) < 0)
		return qerr_sys(err, "store: rename %s to %s", from, to);
	return 0;
}

/* ---- names and refs ---- */

char *store_name_escape(const char *name)
{
	struct buf b = {0};
	buf_append(&b, "", 0);
	for (const char *p = name; *p; p++) {
		if (*p == '/' || *p == '%' || *p == ':')
			buf_printf(&b, "%%%02X", (unsigned char)*p);
		else
			buf_append(&b, p, 1);
	}
	return b.p;
}

char *store_name_unescape(const char *esc)
{
	char *out = xmalloc(strlen(esc) + 1), *w = out;
	for (const char *p = esc; *p; p++) {
		unsigned int c;
		if (*p == '%' && sscanf(p + 1, "%2X", &c) == 1) {
			*w++ = (char)c;
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return out;
}

/* The directory of a repository under images/: its escaped name, or, when that exceeds NAME_MAX (a legal name can
   escape to ~400 bytes), HASHED_PREFIX and a 128-bit FNV-1a hash of the name, with the name itself in
   NAME_FILE inside (checked on every lookup, so a collision can only fail, never alias). In escaped names '%' is
   always followed by two hex digits, so "%h-" cannot start one: the two kinds cannot meet. */
#define HASHED_PREFIX "%h-"
#define NAME_FILE     ".name"

static int list_dir(struct store *st, const char *rel, struct strv *out, struct qerr *err);

static char *name_dir(const char *name, bool *hashed)
{
	char *esc = store_name_escape(name);
	*hashed = strlen(esc) > NAME_MAX;
	if (!*hashed)
		return esc;
	free(esc);
	uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL}; /* two FNV-1a lanes, different offsets */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		for (int i = 0; i < 2; i++)
			h[i] = (h[i] ^ (uint64_t)(*p + i)) * 0x100000001b3ULL;
	return xasprintf("%s%016llx%016llx", HASHED_PREFIX, (unsigned long long)h[0], (unsigned long long)h[1]);
}

/* A hashed directory belongs to name: its NAME_FILE says so (missing: not yet, when may_claim). */
static int hashed_dir_check(struct store *st, const char *dir, const char *name, bool may_claim, struct qerr *err)
{
	autofree char *rel = xasprintf("%s/" NAME_FILE, dir);
	struct qerr ignore;
	autofree char *have = read_file_at(st->rootfd, rel, 4096, NULL, &ignore);
	if (!have && ignore.code == ENOENT && may_claim)
		return write_file_atomic_at(st->rootfd, rel, name, strlen(name), 0644, true, err);
	if (!have && ignore.code == ENOENT) {
		*err = ignore;
		return 1;
	}
	if (!have) {
		*err = ignore;
		return -1;
	}
	if (strcmp(have, name) != 0)
		return qerr_set(err, "store: %s/%s holds %.80s..., not %.80s... (a hash collision)", st->root, dir,
		                have, name);
	return 0;
}

/* A key is a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) or a digest; nothing else may become a file name. */
static bool key_valid(const char *key)
{
	if (store_digest_valid(key))
		return true;
	size_t n = strlen(key);
	if (n == 0 || n > 128 || key[0] == '.' || key[0] == '-')
		return false;
	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.' || *p == '-'))
			return false;
	return true;
}

/* The ref's file, images/<dir>/<key>; *dir (images/<dir>, caller frees) and *hashed describe its directory. */
static char *ref_relpath(const char *name, const char *key, char **dir, bool *hashed, struct qerr *err)
{
	if (!name || !*name || strstr(name, "..") || !key || !key_valid(key)) {
		qerr_set(err, "invalid image name \"%s:%s\"", name ? name : "", key ? key : "");
		return NULL;
	}
	autofree char *base = name_dir(name, hashed);
	*dir = xasprintf("images/%s", base);
	return xasprintf("%s/%s", *dir, key);
}

int store_ref_set(struct store *st, const char *name, const char *key, const char *manifest_digest, struct qerr *err)
{
	if (!store_digest_valid(manifest_digest))
		return qerr_set(err, "store: invalid manifest digest");
	bool hashed;
	autofree char *dir = NULL;
	autofree char *rel = ref_relpath(name, key, &dir, &hashed, err);
	if (!rel)
		return -1;
	if (mkdirat(st->rootfd, dir, 0700) < 0 && errno != EEXIST)
		return qerr_sys(err, "store: mkdir %s", dir);
	if (hashed && hashed_dir_check(st, dir, name, true, err) < 0)
		return -1;
	autofree char *line = xasprintf("%s\n", manifest_digest);
	return write_file_atomic_at(st->rootfd, rel, line, strlen(line), 0644, true, err);
}

char *store_ref_get(struct store *st, const char *name, const char *key, struct qerr *err)
{
	bool hashed;
	autofree char *dir = NULL;
	autofree char *rel = ref_relpath(name, key, &dir, &hashed, err);
	if (!rel)
		return NULL;
	struct qerr ignore;
	char *data = !hashed || hashed_dir_check(st, dir, name, false, &ignore) == 0
	                 ? read_file_at(st->rootfd, rel, 256, NULL, &ignore)
	                 : NULL;
	if (!data) {
		if (ignore.code == ENOENT)
			qerr_set(err, "image not found: %s%s%s (pull it first)", name, store_digest_valid(key) ? "@" : ":",
			         key);
		else
			*err = ignore;
		return NULL;
	}
	data[strcspn(data, "\n")] = '\0';
	if (!store_digest_valid(data)) {
		qerr_set(err, "store: %s/%s: corrupt image ref", st->root, rel);
		free(data);
		return NULL;
	}
	return data;
}

int store_ref_remove(struct store *st, const char *name, const char *key, struct qerr *err)
{
	bool hashed;
	autofree char *dir = NULL;
	autofree char *rel = ref_relpath(name, key, &dir, &hashed, err);
	if (!rel)
		return -1;
	struct qerr ignore;
	bool mine = !hashed || hashed_dir_check(st, dir, name, false, &ignore) == 0;
	if (!mine || unlinkat(st->rootfd, rel, 0) < 0) {
		if (!mine || errno == ENOENT)
			return qerr_set(err, "image not found: %s%s%s", name, store_digest_valid(key) ? "@" : ":", key);
		return qerr_sys(err, "store: remove %s", rel);
	}
	if (hashed) { /* the last tag gone: the name file goes with the dir */
		struct strv left = {0};
		if (list_dir(st, dir, &left, &ignore) == 0 && left.n == 0) {
			autofree char *nf = xasprintf("%s/" NAME_FILE, dir);
			(void)unlinkat(st->rootfd, nf, 0);
		}
		strv_free(&left);
	}
	(void)unlinkat(st->rootfd, dir, AT_REMOVEDIR); /* fails while other tags remain: fine */
	return 0;
}

int store_dir_list(struct store *st, const char *rel, struct strv *out, struct qerr *err)
{
	int fd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return qerr_sys(err, "%s: open", rel);
	DIR *d = fdopendir(fd);
	if (!d) {
		qerr_sys(err, "%s: opendir", rel);
		close(fd);
		return -1;
	}
	for (;;) {
		errno = 0; /* readdir tells the end from an error (EIO, a vanished directory) only by errno */
		struct dirent *e = readdir(d);
		if (!e)
			break;
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			strv_push(out, e->d_name);
	}
	int rc = errno ? qerr_sys(err, "%s: read directory", rel) : 0;
	closedir(d);
	return rc;
}

/* The names in rel but dot files and atomic writes in progress; a missing directory is an empty one. */
static int list_dir(struct store *st, const char *rel, struct strv *out, struct qerr *err)
{
	struct strv all = {0};
	if (store_dir_list(st, rel, &all, err) < 0) {
		strv_free(&all);
		return err->code == ENOENT ? 0 : -1;
	}
	for (size_t i = 0; i < all.n; i++)
		if (all.v[i][0] != '.' && !strstr(all.v[i], ".tmp-"))
			strv_push(out, all.v[i]);
	strv_free(&all);
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct store_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->key, y->key);
}

int store_refs_list(struct store *st, struct store_ref **out, size_t *n, struct qerr *err)
{
	struct strv names = {0};
	*out = NULL;
	*n = 0;
	if (list_dir(st, "images", &names, err) < 0)
		return -1;
	size_t cap = 0;
	for (size_t i = 0; i < names.n; i++) {
		struct strv keys = {0};
		autofree char *rel = xasprintf("images/%s", names.v[i]);
		if (list_dir(st, rel, &keys, err) < 0) {
			strv_free(&keys);
			continue;
		}
		struct qerr nferr;
		autofree char *nf = xasprintf("%s/" NAME_FILE, rel);
		autofree char *name = strncmp(names.v[i], HASHED_PREFIX, strlen(HASHED_PREFIX)) == 0
		                          ? read_file_at(st->rootfd, nf, 4096, NULL, &nferr)
		                          : store_name_unescape(names.v[i]);
		if (!name) { /* a hashed dir whose name file is missing: nothing to list */
			strv_free(&keys);
			continue;
		}
		for (size_t k = 0; k < keys.n; k++) {
			struct qerr ignore;
			char *dg = store_ref_get(st, name, keys.v[k], &ignore);
			if (!dg)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				*out = xrealloc(*out, cap * sizeof **out);
			}
			(*out)[(*n)++] = (struct store_ref){xstrdup(name), xstrdup(keys.v[k]), dg};
		}
		strv_free(&keys);
	}
	strv_free(&names);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_ref);
	return 0;
}

/* The repository a directory under images/ holds: its NAME_FILE for a hashed one, else its unescaped name. NULL
   with *gone when a concurrent rmi removed the directory's last ref (and so its NAME_FILE) meanwhile. */
static char *repo_name_strict(struct store *st, const char *rel, const char *base, bool *gone, struct qerr *err)
{
	*gone = false;
	if (strncmp(base, HASHED_PREFIX, strlen(HASHED_PREFIX)) != 0)
		return store_name_unescape(base);
	autofree char *nf = xasprintf("%s/" NAME_FILE, rel);
	char *name = read_file_at(st->rootfd, nf, 4096, NULL, err);
	if (name || err->code != ENOENT)
		return name;
	struct strv left = {0}; /* rmi unlinks NAME_FILE only once no ref is left in the directory */
	struct qerr lerr;
	*gone = list_dir(st, rel, &left, &lerr) == 0 && left.n == 0;
	strv_free(&left);
	return NULL;
}

/* Append every ref of images/<base>; what a concurrent rmi (which takes no store lock) removed is skipped. */
static int repo_refs_strict(struct store *st, const char *base, struct store_ref **out, size_t *n, size_t *cap,
                            struct qerr *err)
{
	autofree char *rel = xasprintf("images/%s", base);
	struct strv keys = {0};
	if (list_dir(st, rel, &keys, err) < 0) /* ENOENT: rmi removed the directory with its last ref */
		return -1;
	bool gone;
	autofree char *name = keys.n ? repo_name_strict(st, rel, base, &gone, err) : NULL;
	if (keys.n && !name) {
		strv_free(&keys);
		return gone ? 0 : qerr_wrap(err, "repository directory %s: ", rel);
	}
	int rc = 0;
	for (size_t k = 0; k < keys.n && rc == 0; k++) {
		autofree char *label = xasprintf("%s%s%s", name, store_digest_valid(keys.v[k]) ? "@" : ":", keys.v[k]);
		autofree char *file = xasprintf("%s/%s", rel, keys.v[k]);
		char *dg = read_file_at(st->rootfd, file, 256, NULL, err);
		if (!dg && err->code == ENOENT)
			continue; /* rmi removed it since the directory was listed */
		if (!dg) {
			rc = qerr_wrap(err, "image ref %s: ", label);
			break;
		}
		dg[strcspn(dg, "\n")] = '\0';
		if (!store_digest_valid(dg)) {
			rc = qerr_set(err, "image ref %s: %s: corrupt (\"%.40s\" is not a sha256 digest)", label, file,
			              dg);
			free(dg);
			break;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*out = xrealloc(*out, *cap * sizeof **out);
		}
		(*out)[(*n)++] = (struct store_ref){xstrdup(name), xstrdup(keys.v[k]), dg};
	}
	strv_free(&keys);
	return rc;
}

int store_refs_list_strict(struct store *st, struct store_ref **out, size_t *n, struct qerr *err)
{
	struct strv dirs = {0};
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	int rc = list_dir(st, "images", &dirs, err);
	for (size_t i = 0; i < dirs.n && rc == 0; i++)
		rc = repo_refs_strict(st, dirs.v[i], out, n, &cap, err);
	strv_free(&dirs);
	if (rc < 0) {
		store_refs_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_ref);
	return 0;
}

void store_refs_free(struct store_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(refs[i].name);
		free(refs[i].key);
		free(refs[i].digest);
	}
	free(refs);
}

/* ---- run specs: "key value" lines, values escaped with line_escape ---- */

static void spec_put(struct buf *b, const char *key, const char *val)
{
	if (!val)
		return;
	autofree char *esc = line_escape(val);
	buf_printf(b, "%s %s\n", key, esc);
}

static void spec_put_strv(struct buf *b, const char *key, const struct strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		spec_put(b, key, v->v[i]);
}

int store_spec_write(struct store *st, const struct image_spec *spec, struct qerr *err)
{
	if (!store_digest_valid(spec->manifest_digest))
		return qerr_set(err, "store: spec: invalid manifest digest");
	struct buf b = {0};
	buf_printf(&b, "%s\n", SPEC_MAGIC);
	spec_put(&b, "manifest", spec->manifest_digest);
	spec_put(&b, "config", spec->config_digest);
	spec_put(&b, "platform", spec->platform);
	spec_put(&b, "created", spec->created);
	buf_printf(&b, "size %lld\n", (long long)spec->size);
	spec_put_strv(&b, "layer", &spec->layers);
	spec_put_strv(&b, "blob", &spec->blobs);
	spec_put_strv(&b, "env", &spec->env);
	if (spec->has_entrypoint)
		buf_printf(&b, "has-entrypoint\n");
	spec_put_strv(&b, "entrypoint", &spec->entrypoint);
	if (spec->has_cmd)
		buf_printf(&b, "has-cmd\n");
	spec_put_strv(&b, "cmd", &spec->cmd);
	spec_put(&b, "workdir", spec->workdir);
	spec_put(&b, "user", spec->user);
	spec_put(&b, "stop-signal", spec->stop_signal);
	buf_printf(&b, "end\n");
	autofree char *rel = xasprintf("specs/%s", store_digest_hex(spec->manifest_digest));
	int rc = write_file_atomic_at(st->rootfd, rel, b.p, b.len, 0644, true, err);
	buf_free(&b);
	return rc;
}

static char **spec_field(struct image_spec *spec, const char *key)
{
	if (!strcmp(key, "manifest"))
		return &spec->manifest_digest;
	if (!strcmp(key, "config"))
		return &spec->config_digest;
	if (!strcmp(key, "platform"))
		return &spec->platform;
	if (!strcmp(key, "created"))
		return &spec->created;
	if (!strcmp(key, "workdir"))
		return &spec->workdir;
	if (!strcmp(key, "user"))
		return &spec->user;
	if (!strcmp(key, "stop-signal"))
		return &spec->stop_signal;
	return NULL;
}

static struct strv *spec_list(struct image_spec *spec, const char *key)
{
	if (!strcmp(key, "layer"))
		return &spec->layers;
	if (!strcmp(key, "env"))
		return &spec->env;
	if (!strcmp(key, "blob"))
		return &spec->blobs;
	if (!strcmp(key, "entrypoint"))
		return &spec->entrypoint;
	if (!strcmp(key, "cmd"))
		return &spec->cmd;
	return NULL;
}

int store_spec_read(struct store *st, const char *manifest_digest, struct image_spec *spec, struct qerr *err)
{
	memset(spec, 0, sizeof *spec);
	if (!store_digest_valid(manifest_digest))
		return qerr_set(err, "invalid digest \"%s\"", manifest_digest ? manifest_digest : "");
	autofree char *rel = xasprintf("specs/%s", store_digest_hex(manifest_digest));
	autofree char *data = read_file_at(st->rootfd, rel, SPEC_MAX, NULL, err);
	if (!data)
		return qerr_wrap(err, "store: image %s: ", manifest_digest);
	char *save = NULL;
	char *line = strtok_r(data, "\n", &save);
	if (!line || strcmp(line, SPEC_MAGIC) != 0)
		return qerr_set(err, "store: image %s: %s: not a qimg run spec", manifest_digest, rel);
	bool ended = false;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *val = strchr(line, ' ');
		if (val)
			*val++ = '\0';
		if (!strcmp(line, "end")) {
			ended = true;
			break;
		}
		if (!strcmp(line, "has-entrypoint")) {
			spec->has_entrypoint = true;
			continue;
		}
		if (!strcmp(line, "has-cmd")) {
			spec->has_cmd = true;
			continue;
		}
		if (!val)
			continue;
		line_unescape(val);
		char **f = spec_field(spec, line);
		struct strv *l = spec_list(spec, line);
		if (f) {
			free(*f);
			*f = xstrdup(val);
		} else if (l) {
			strv_push(l, val);
		} else if (!strcmp(line, "size")) {
			spec->size = strtoll(val, NULL, 10);
		}
	}
	if (!ended || !spec->manifest_digest) {
		store_spec_free(spec);
		return qerr_set(err, "store: image %s: %s: truncated run spec", manifest_digest, rel);
	}
	return 0;
}

void store_spec_free(struct image_spec *spec)
{
	free(spec->manifest_digest);
	free(spec->config_digest);
	free(spec->platform);
	free(spec->created);
	free(spec->workdir);
	free(spec->user);
	free(spec->stop_signal);
	strv_free(&spec->layers);
	strv_free(&spec->blobs);
	strv_free(&spec->env);
	strv_free(&spec->entrypoint);
	strv_free(&spec->cmd);
	memset(spec, 0, sizeof *spec);
}

/* ---- layers ---- */

bool store_layer_exists(struct store *st, const char *layer_id)
{
	if (!hex_exact(layer_id, DIGEST_HEX_LEN))
		return false;
	autofree char *rel = xasprintf("layers/%s", layer_id);
	struct stat sb;
	return fstatat(st->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode);
}

/* ---- image leases, kept containers' records ---- */

#define SPEC_TOUCH_SECONDS 60

int store_image_lease_take(struct store *st, const char *manifest_digest, struct qerr *err)
{
	int fd = store_lock_object(st, "image", store_digest_hex(manifest_digest), false, true, err);
	if (fd < 0)
		return -1;
	/* The spec's mtime is the image's last use (gc --older-than); touching it once a minute is enough. */
	autofree char *rel = xasprintf("specs/%s", store_digest_hex(manifest_digest));
	struct stat sb;
	if (fstatat(st->rootfd, rel, &sb, 0) == 0 && time(NULL) - sb.st_mtime > SPEC_TOUCH_SECONDS)
		(void)utimensat(st->rootfd, rel, NULL, 0);
	return fd;
}

int store_image_lease_held(struct store *st, const char *hex, struct qerr *err)
{
	int fd = store_lock_object(st, "image", hex, true, false, err);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (err->code == EWOULDBLOCK)
		return 1;
	return qerr_wrap(err, "lease of image sha256:%s: ", hex);
}

int store_kept_dir(struct store *st, const char *name, struct qerr *err)
{
	autofree char *rel = xasprintf("runs/%s", name);
	int fd = openat(st->rootfd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? qerr_sys(err, "open %s", rel) : fd;
}

int store_kept_image_get(struct store *st, const char *name, char **digest, struct qerr *err)
{
	*digest = NULL;
	autoclose int dir = store_kept_dir(st, name, err);
	if (dir < 0)
		return err->code == ENOENT ? 0 : -1;
	autoclose int fd = openat(dir, "image", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		qerr_sys(err, "open runs/%s/image", name);
		return err->code == ENOENT ? 0 : -1;
	}
	char buf[DIGEST_LEN + 2];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0)
		return qerr_sys(err, "read runs/%s/image", name);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!store_digest_valid(buf)) {
		qerr_set(err, "runs/%s/image: corrupt (\"%.40s\" is not a sha256 digest)", name, buf);
		err->code = EBADMSG;
		return -1;
	}
	*digest = xstrdup(buf);
	return 1;
}

int store_kept_image_set(struct store *st, const char *name, const char *digest, struct qerr *err)
{
	autoclose int dir = store_kept_dir(st, name, err);
	if (dir < 0)
		return -1;
	autofree char *line = xasprintf("%s\n", digest);
	return write_file_atomic_at(dir, "image", line, strlen(line), 0644, true, err);
}

bool store_layer_sidefile(const char *name, size_t *idlen)
{
	static const char *const suffixes[] = {".json", ".idmap", NULL};
	size_t n = strlen(name);
	for (const char *const *sfx = suffixes; *sfx; sfx++) {
		size_t l = strlen(*sfx);
		if (n > l && !strcmp(name + n - l, *sfx)) {
			*idlen = n - l;
			return true;
		}
	}
	return false;
}

bool store_layer_current(struct store *st, const char *layer_id, const char *map)
{
	char have[512];
	struct qerr ignored;
	return store_layer_exists(st, layer_id) &&
	       store_layer_idmap_check(st, layer_id, map, have, sizeof have, &ignored) == 1;
}

int store_layer_idmap_set(struct store *st, const char *layer_id, const char *map, struct qerr *err)
{
	char rnd[17];
	random_hex(rnd, 16);
	autofree char *rel = xasprintf("layers/%s.idmap", layer_id);
	autofree char *tmp = xasprintf("%s.tmp-%d-%s", rel, (int)getpid(), rnd);
	if (symlinkat(map, st->rootfd, tmp) < 0)
		return qerr_sys(err, "store: record the id map of layer %.12s", layer_id);
	if (renameat(st->rootfd, tmp, st->rootfd, rel) < 0) {
		int saved = errno;
		unlinkat(st->rootfd, tmp, 0);
		errno = saved;
		return qerr_sys(err, "store: record the id map of layer %.12s", layer_id);
	}
	return 0;
}

int store_layer_idmap_check(struct store *st, const char *layer_id, const char *map, char *have, size_t size,
                            struct qerr *err)
{
	char rel[32 + DIGEST_HEX_LEN];
	snprintf(rel, sizeof rel, "layers/%s.idmap", layer_id);
	ssize_t n = readlinkat(st->rootfd, rel, have, size - 1);
	if (n < 0 && errno == ENOENT)
		return 1;
	if (n < 0)
		return qerr_sys(err, "store: read the id map record %s", rel);
	have[n] = '\0';
	return (size_t)n < size - 1 && !strcmp(have, map) ? 1 : 0;
}

char *store_layer_path(struct store *st, const char *layer_id)
{
	return xasprintf("%s/layers/%s", st->root, layer_id);
}

/* ---- locks ---- */

/* The lock is taken on the file the path names when the lock is granted: rm and gc unlink lock files of objects
   they remove (while holding them), so a process that opened the path before the unlink and locked the orphaned
   inode after it would hold a lock nobody else can see. It checks, and tries again on the new file. */
static int lock_file(struct store *st, const char *rel, bool exclusive, bool wait, struct qerr *err)
{
	int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
	for (;;) {
		int fd = openat(st->rootfd, rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return qerr_sys(err, "store: open lock %s", rel);
		int rc;
		while ((rc = flock(fd, op)) < 0 && errno == EINTR)
			;
		if (rc < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			qerr_sys(err, "store: lock %s", rel);
			err->code = saved;
			return -1;
		}
		struct stat held, named;
		if (fstat(fd, &held) < 0) {
			qerr_sys(err, "store: lock %s: fstat", rel);
			close(fd);
			return -1;
		}
		int named_rc = fstatat(st->rootfd, rel, &named, AT_SYMLINK_NOFOLLOW);
		if (named_rc == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev)
			return fd;
		if (named_rc < 0 && errno != ENOENT) {
			qerr_sys(err, "store: lock %s: stat", rel);
			close(fd);
			return -1;
		}
		close(fd); /* unlinked (or replaced) while we waited: lock what the path names now */
	}
}

int store_lock(struct store *st, bool exclusive, bool wait, struct qerr *err)
{
	return lock_file(st, "locks/store.lock", exclusive, wait, err);
}

int store_lock_object(struct store *st, const char *kind, const char *id, bool exclusive, bool wait, struct qerr *err)
{
	for (const char *p = kind; *p; p++)
		if (*p == '/' || *p == '.')
			return qerr_set(err, "store: invalid lock kind");
	for (const char *p = id; *p; p++)
		if (*p == '/' || (*p == '.' && p == id))
			return qerr_set(err, "store: invalid lock id \"%s\"", id);
	autofree char *rel = xasprintf("locks/%s-%s.lock", kind, id);
	return lock_file(st, rel, exclusive, wait, err);
}
