/* Unit tests: store layout, digests, refs, run specs, name escaping (store/store.c). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>
#include "../../store/store.h"
#include "t.h"

static const char D1[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/* Does pid have an open fd on a file whose path ends in suffix? */
static int has_fd_on(pid_t pid, const char *suffix)
{
	char dir[64], link[PATH_MAX], path[PATH_MAX + 64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n > 0) {
			link[n] = '\0';
			size_t ls = strlen(suffix);
			found = (size_t)n >= ls && !strcmp(link + n - ls, suffix);
		}
	}
	closedir(d);
	return found;
}

/* rm racing run --keep (issue 13): the holder of an exclusive object lock unlinks its file and releases it while a
   second process, which had opened that file, waits in flock. The waiter must end up holding the file the path
   names now, so that a third process finds the lock held; holding the orphaned inode would make two holders. */
static void t_lock_unlinked_while_held(struct store *st)
{
	struct qerr e = {0};
	int a = store_lock_object(st, "run", "racy", true, true, &e);
	int ready[2], done[2];
	if (a < 0 || pipe(ready) < 0 || pipe(done) < 0) {
		T_OK("lock race: setup", 0);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(a); /* the holder's open file (and its lock) is the parent's alone */
		struct qerr e2 = {0};
		int b = store_lock_object(st, "run", "racy", true, true, &e2);
		char c = b < 0 ? 'n' : 'y';
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
			_exit(3);
		_exit(0);
	}
	for (int i = 0; i < 5000 && !has_fd_on(pid, "/locks/run-racy.lock"); i++)
		usleep(1000);
	usleep(20000); /* the waiter is now in flock on the file it opened */
	T_OK("lock race: holder unlinks its lock file", unlinkat(st->rootfd, "locks/run-racy.lock", 0) == 0);
	close(a);
	char c = 0;
	T_OK("lock race: the waiter gets the lock", read(ready[0], &c, 1) == 1 && c == 'y');
	int third = store_lock_object(st, "run", "racy", true, false, &e);
	T_OK("lock race: a third process finds it held (one holder)", third < 0 && e.code == EWOULDBLOCK);
	if (third >= 0)
		close(third);
	if (write(done[1], "x", 1) != 1)
		kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	close(ready[0]), close(ready[1]), close(done[0]), close(done[1]);
}

int main(void)
{
	char tmpl[] = "/tmp/qimg-unit-XXXXXX";
	if (!mkdtemp(tmpl))
		return 2;
	struct store st;
	struct qerr err = {0};
	T_OK("open creates layout", store_open(&st, tmpl, &err) == 0);
	T_OK("layout has blobs/sha256", faccessat(st.rootfd, "blobs/sha256", F_OK, 0) == 0);

	T_OK("digest valid", store_digest_valid(D1));
	T_OK("digest uppercase refused",
	     !store_digest_valid("sha256:1111111111111111111111111111111111111111111111111111111111111A11"));
	T_OK("digest traversal refused", !store_digest_valid("sha256:../../../../etc/passwd"));
	T_OK("digest short refused", !store_digest_valid("sha256:11"));
	T_OK("digest long refused",
	     !store_digest_valid("sha256:11111111111111111111111111111111111111111111111111111111111111112"));
	T_OK("digest other algo refused",
	     !store_digest_valid("sha512:1111111111111111111111111111111111111111111111111111111111111111"));

	char *esc = store_name_escape("127.0.0.1:5000/a/b");
	T_STREQ("escape name", "127.0.0.1%3A5000%2Fa%2Fb", esc);
	char *un = store_name_unescape(esc);
	T_STREQ("unescape name", "127.0.0.1:5000/a/b", un);
	free(esc);
	free(un);

	T_OK("ref set", store_ref_set(&st, "docker.io/library/busybox", "latest", D1, &err) == 0);
	char *got = store_ref_get(&st, "docker.io/library/busybox", "latest", &err);
	T_STREQ("ref get", D1, got);
	free(got);
	T_OK("ref missing is an error", store_ref_get(&st, "docker.io/library/nope", "latest", &err) == NULL &&
	                                    strstr(err.msg, "image not found") != NULL);
	T_OK("ref with traversal key refused", store_ref_set(&st, "a/b", "../../x", D1, &err) < 0);
	T_OK("ref with bad name refused", store_ref_set(&st, "../a", "t", D1, &err) < 0);
	struct store_ref *refs;
	size_t n;
	T_OK("refs list", store_refs_list(&st, &refs, &n, &err) == 0 && n == 1 && !strcmp(refs[0].key, "latest"));
	store_refs_free(refs, n);

	/* A name whose escaped form exceeds NAME_MAX: a hashed directory with the name in .name, never aliased. */
	char longname[260] = "localhost:5000";
	while (strlen(longname) < 240)
		strcat(longname, "/abcdefghi");
	T_OK("long name: ref set", store_ref_set(&st, longname, "v1", D1, &err) == 0);
	got = store_ref_get(&st, longname, "v1", &err);
	T_STREQ("long name: ref get", D1, got);
	free(got);
	T_OK("long name: listed with its name",
	     store_refs_list(&st, &refs, &n, &err) == 0 && n == 2 &&
	         (!strcmp(refs[0].name, longname) || !strcmp(refs[1].name, longname)));
	store_refs_free(refs, n);
	char *imgdir = xasprintf("%s/images", st.root);
	DIR *imgs = opendir(imgdir);
	free(imgdir);
	char hashed[300] = "";
	for (struct dirent *e; imgs && (e = readdir(imgs)) != NULL;)
		if (!strncmp(e->d_name, "%h-", 3))
			snprintf(hashed, sizeof hashed, "images/%s/.name", e->d_name);
	if (imgs)
		closedir(imgs);
	T_OK("long name: one hashed directory", *hashed != '\0');
	/* Another name in that directory (what a hash collision would look like): lookups fail, nothing aliases. */
	T_OK("long name: claimed by another name",
	     write_file_atomic_at(st.rootfd, hashed, "other/name", 10, 0644, false, &err) == 0);
	T_OK("long name: get refuses a directory of another name", store_ref_get(&st, longname, "v1", &err) == NULL);
	T_OK("long name: set refuses it, saying why",
	     store_ref_set(&st, longname, "v2", D1, &err) < 0 && strstr(err.msg, "hash collision") != NULL);
	T_OK("long name: rmi refuses it", store_ref_remove(&st, longname, "v1", &err) < 0);

	struct image_spec spec = {0}, back;
	spec.manifest_digest = (char *)D1;
	spec.config_digest = (char *)D1;
	spec.platform = (char *)"linux/amd64";
	spec.size = 12345;
	strv_push(&spec.layers, "aaaa");
	strv_push(&spec.layers, "bbbb");
	strv_push(&spec.env, "PATH=/bin");
	strv_push(&spec.env, "MULTI=line1\nline2\\tab\t");
	spec.has_cmd = true;
	strv_push(&spec.cmd, "sh");
	strv_push(&spec.cmd, "");
	spec.workdir = (char *)"/w d";
	T_OK("spec write", store_spec_write(&st, &spec, &err) == 0);
	T_OK("spec read", store_spec_read(&st, D1, &back, &err) == 0);
	T_OK("spec layers order",
	     back.layers.n == 2 && !strcmp(back.layers.v[0], "aaaa") && !strcmp(back.layers.v[1], "bbbb"));
	T_STREQ("spec env escaped round trip", "MULTI=line1\nline2\\tab\t", back.env.v[1]);
	T_OK("spec cmd with empty arg", back.has_cmd && back.cmd.n == 2 && back.cmd.v[1][0] == '\0');
	T_OK("spec no entrypoint", !back.has_entrypoint && back.entrypoint.n == 0);
	T_STREQ("spec workdir", "/w d", back.workdir);
	T_OK("spec size", back.size == 12345);
	store_spec_free(&back);
	strv_free(&spec.layers);
	strv_free(&spec.env);
	strv_free(&spec.cmd);

	/* A truncated spec is refused instead of running with half a config. */
	int fd = openat(st.rootfd, "specs/1111111111111111111111111111111111111111111111111111111111111111",
	                O_WRONLY | O_TRUNC);
	T_OK("truncate spec", fd >= 0 && write(fd, "qimg-spec 1\nmanifest x\n", 23) == 23);
	close(fd);
	T_OK("truncated spec refused", store_spec_read(&st, D1, &back, &err) < 0 && strstr(err.msg, "truncated"));

	int l1 = store_lock_object(&st, "layer", "abc", true, false, &err);
	int l2 = store_lock_object(&st, "layer", "abc", true, false, &err);
	T_OK("object lock exclusive", l1 >= 0 && l2 < 0);
	close(l1);
	T_OK("lock id traversal refused", store_lock_object(&st, "layer", "../x", true, false, &err) < 0);

	T_OK("parse_size", parse_size("20G") == 20LL << 30 && parse_size("1.5k") == 1536 && parse_size("x") < 0);
	T_OK("parse_size: units and suffixes",
	     parse_size("512") == 512 && parse_size("2m") == 2LL << 20 && parse_size("3MiB") == 3LL << 20 &&
	         parse_size("1TB") == 1LL << 40 && parse_size("4kb") == 4096 && parse_size("5 ") < 0 &&
	         parse_size("5B") < 0 && parse_size("5P") < 0 && parse_size("5Mx") < 0 && parse_size("") < 0);
	T_OK("parse_size: no NaN, infinity or int64 overflow",
	     parse_size("nan") < 0 && parse_size("inf") < 0 && parse_size("1e30") < 0 && parse_size("9000000T") < 0 &&
	         parse_size("8000000T") == 8000000LL << 40);
	T_OK("parse_duration: no NaN, infinity or overflow", parse_duration("nan") < 0 && parse_duration("infd") < 0 &&
	                                                         parse_duration("1e300w") < 0 &&
	                                                         parse_duration("2h") == 7200);
	T_OK("parse_duration",
	     parse_duration("7d") == 7 * 86400 && parse_duration("10m") == 600 && parse_duration("1y") < 0);

	t_lock_unlinked_while_held(&st);
	struct qerr rmerr;
	rm_rf_at(AT_FDCWD, tmpl, &rmerr);
	store_close(&st);
	T_DONE();
}
