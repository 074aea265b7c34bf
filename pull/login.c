/* qimg login/logout: credentials checked against the registry, then kept in a containers-auth.json (mode 0600);
   and docker credential helpers (`docker-credential-NAME get`) for the credential search of pulls. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

#define HELPER_OUT_MAX (1 << 20) /* bytes of a credential helper's answer */
#define HELPER_PREFIX  "docker-credential-"
#define DOCKER_HUB_KEY "https://index.docker.io/v1/" /* the server name docker's helpers store Hub under */

/* ---- where credentials are written ---- */

char *login_auth_file(const char *opt, bool *fallback)
{
	const char *env = getenv("REGISTRY_AUTH_FILE"), *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");

	*fallback = false;
	if (opt && *opt)
		return xstrdup(opt);
	if (env && *env)
		return xstrdup(env);
	if (xdg && *xdg)
		return xasprintf("%s/containers/auth.json", xdg);
	*fallback = true;
	return home && *home ? xasprintf("%s/.config/containers/auth.json", home) : NULL;
}

/* "https://Host:5000/v1/" -> "host:5000"; the Hub's names -> "docker.io"; a namespace path is kept. */
char *login_key(const char *registry)
{
	const char *s = registry;
	char *k, *slash;

	if (strncasecmp(s, "https://", 8) == 0)
		s += 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	k = xstrdup(s);
	while (*k && k[strlen(k) - 1] == '/')
		k[strlen(k) - 1] = '\0';
	slash = strchr(k, '/');
	for (char *p = k; *p && p != slash; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	if (slash &&
	    (strncmp(k, "index.docker.io/v1", 18) == 0 || strcmp(slash, "/v1") == 0 || strcmp(slash, "/v2") == 0))
		*slash = '\0';
	if (!strcmp(k, "index.docker.io") || !strcmp(k, "registry-1.docker.io")) {
		free(k);
		k = xstrdup("docker.io");
	}
	return k;
}

/* ---- checking credentials against the registry ---- */

/* registries.conf's word on host: insecure turns TLS verification off, blocked refuses. */
static int login_regconf(const char *host, struct pull_opts *po, struct qerr *err)
{
	struct regconf rc;
	const struct regconf_registry *r;
	int rc_ = 0;

	if (regconf_load(&rc, err) < 0)
		return -1;
	r = regconf_find(&rc, host);
	if (r && r->blocked)
		rc_ = qerr_set(err, "login: %s is blocked by %s", host, r->file);
	else if (r && r->insecure)
		po->tls_verify_off = true;
	regconf_free(&rc);
	return rc_;
}

int login_verify(const char *registry, const char *user, const char *pass, const struct login_opts *o, struct qerr *err)
{
	autofree char *key = login_key(registry);
	struct image_ref ref = {.domain = key, .path = (char *)""};
	struct pull_opts po = {.tls_verify_off = o->tls_verify_off, .certs_dir = o->certs_dir};
	struct credentials c = {.user = (char *)user, .pass = (char *)pass};
	struct registry *r;
	char *slash = strchr(key, '/');
	int rc;

	if (slash)
		*slash = '\0'; /* a namespace ("quay.io/org") is checked against its registry */
	if (!*key)
		return qerr_set(err, "login: empty registry name");
	if (login_regconf(key, &po, err) < 0)
		return -1;
	r = registry_new(&ref, &po, err);
	if (!r)
		return -1;
	rc = registry_check_login(r, &c, err);
	registry_free(r);
	return rc;
}

/* ---- the auth file ---- */

/* The file's JSON object (a new one when the file does not exist). */
static json_t *authfile_load(const char *file, struct qerr *err)
{
	size_t len = 0;
	char *text = read_file_at(AT_FDCWD, file, AUTHFILE_MAX, &len, err);
	json_t *j;

	if (!text)
		return err->code == ENOENT ? json_object() : (qerr_wrap(err, "credentials: "), NULL);
	j = len ? pjson_parse_object(text, len, file, err) : json_object();
	explicit_bzero(text, len);
	free(text);
	return j;
}

/* mkdir -p the file's directory; directories we create are 0700 (credentials live there). */
static int authfile_dir(const char *file, struct qerr *err)
{
	autofree char *dir = xstrdup(file);
	char *slash = strrchr(dir, '/');

	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return mkdir_p(dir, 0700, err);
}

static int authfile_write(const char *file, json_t *j, struct qerr *err)
{
	char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	int rc;

	if (!text)
		return qerr_set(err, "credentials: cannot encode %s", file);
	rc = authfile_dir(file, err);
	if (rc == 0)
		rc = write_file_atomic_at(AT_FDCWD, file, text, strlen(text), 0600, true, err);
	explicit_bzero(text, strlen(text));
	free(text);
	return rc < 0 ? qerr_wrap(err, "credentials: ") : 0;
}

/* The "auths" object of j (created when absent); NULL when it is not an object. */
static json_t *auths_of(json_t *j, const char *file, struct qerr *err)
{
	json_t *a = json_object_get(j, "auths");

	if (!a) {
		a = json_object();
		json_object_set_new(j, "auths", a);
	}
	if (!json_is_object(a))
		qerr_set(err, "credentials: %s: \"auths\" is not an object", file);
	return json_is_object(a) ? a : NULL;
}

int login_store(const char *registry, const char *user, const char *pass, const char *file, struct qerr *err)
{
	struct credentials c = {.user = (char *)user, .pass = (char *)pass};
	autofree char *key = login_key(registry), *basic = basic_auth_value(&c);
	json_t *j = authfile_load(file, err), *auths = j ? auths_of(j, file, err) : NULL;
	int rc = -1;

	if (auths) {
		json_object_del(auths, key);
		json_object_set_new(auths, key, json_pack("{s:s}", "auth", basic + strlen("Basic ")));
		rc = authfile_write(file, j, err);
	}
	explicit_bzero(basic, strlen(basic));
	json_decref(j);
	return rc;
}

/* Remove every auths entry whose key names registry (any spelling of it). */
static size_t auths_remove(json_t *auths, const char *key)
{
	size_t removed = 0;
	void *it = json_object_iter(auths);

	while (it) {
		const char *k = json_object_iter_key(it);
		autofree char *nk = login_key(k);

		it = json_object_iter_next(auths, it);
		if (strcmp(nk, key) == 0) {
			json_object_del(auths, k);
			removed++;
			it = json_object_iter(auths); /* deletion invalidates the iterator */
		}
	}
	return removed;
}

int login_remove(const char *registry, const char *file, struct qerr *err)
{
	autofree char *key = registry ? login_key(registry) : NULL;
	json_t *j, *auths;
	size_t n;
	int rc;

	if (access(file, F_OK) < 0)
		return errno == ENOENT ? 0 : qerr_sys(err, "credentials: %s", file);
	j = authfile_load(file, err);
	auths = j ? auths_of(j, file, err) : NULL;
	if (!auths) {
		json_decref(j);
		return -1;
	}
	n = key ? auths_remove(auths, key) : json_object_size(auths);
	if (!key)
		json_object_clear(auths);
	rc = n ? authfile_write(file, j, err) : 0;
	json_decref(j);
	return rc < 0 ? -1 : n > 0;
}

/* ---- docker credential helpers ---- */

static bool helper_name_ok(const char *name)
{
	return *name && strlen(name) < 64 &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(name);
}

/* Write s to fd without dying of SIGPIPE when the helper has already gone. */
static void write_nosigpipe(int fd, const char *s)
{
	sigset_t pipe_set, old;
	struct timespec zero = {0, 0};

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	if (write_all(fd, s, strlen(s)) < 0 && errno == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int read_bounded(int fd, struct buf *out, struct qerr *err)
{
	char chunk[4096];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qerr_sys(err, "read");
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > HELPER_OUT_MAX)
			return qerr_set(err, "answer longer than %d bytes", HELPER_OUT_MAX);
		buf_append(out, chunk, (size_t)n);
	}
}

/* Run prog get with server on its stdin; its stdout into out; its exit status into *status. */
static int helper_run(const char *prog, const char *server, struct buf *out, int *status, struct qerr *err)
{
	int in[2], outp[2], rc;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return qerr_sys(err, "pipe");
	if (pipe2(outp, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return qerr_sys(err, "pipe");
	}
	pid = fork();
	if (pid == 0) {
		char *argv[] = {(char *)prog, (char *)"get", NULL};
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(outp[1], STDOUT_FILENO) < 0)
			_exit(126);
		execvp(prog, argv);
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(in[0]);
	close(outp[1]);
	if (pid < 0) {
		close(in[1]);
		close(outp[0]);
		return qerr_sys(err, "fork");
	}
	write_nosigpipe(in[1], server);
	close(in[1]);
	rc = read_bounded(outp[0], out, err);
	close(outp[0]);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "wait for %s", prog);
	return rc;
}

/* {"ServerURL": .., "Username": .., "Secret": ..} into c. */
static int helper_answer(const char *prog, const struct buf *out, struct credentials *c, struct qerr *err)
{
	json_t *j = pjson_parse_object(out->p ? out->p : "", out->len, prog, err);
	const char *user = json_string_value(json_object_get(j, "Username"));
	const char *secret = json_string_value(json_object_get(j, "Secret"));
	int rc = 1;

	if (!j)
		return -1;
	if (!user || !secret || !*secret)
		rc = qerr_set(err, "%s: the answer has no Username and Secret", prog);
	else if (strcmp(user, "<token>") == 0)
		c->identity_token = xstrdup(secret); /* docker's convention: an OAuth2 refresh token */
	else {
		c->user = xstrdup(user);
		c->pass = xstrdup(secret);
	}
	json_decref(j);
	return rc;
}

int credhelper_get(const char *name, const char *domain, struct credentials *c, struct qerr *err)
{
	autofree char *prog = xasprintf(HELPER_PREFIX "%s", name);
	const char *server = strcmp(domain, "docker.io") == 0 ? DOCKER_HUB_KEY : domain;
	struct buf out = {0};
	int status = 0, rc;

	if (!helper_name_ok(name))
		return qerr_set(err, "credential helper name \"%s\" is not a plain name", name);
	rc = helper_run(prog, server, &out, &status, err);
	if (rc < 0)
		qerr_wrap(err, "%s: ", prog);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		rc = qerr_set(err, "credential helper %s not found on $PATH", prog);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		autofree char *said = printable(out.p ? out.p : "", 200);
		if (strstr(said, "credentials not found"))
			rc = 0; /* the helper has none for this server: keep searching */
		else
			rc = qerr_set(err, "%s get: failed (status %d): %s", prog,
			              WIFEXITED(status) ? WEXITSTATUS(status) : -1, said);
	} else {
		rc = helper_answer(prog, &out, c, err);
	}
	if (out.p)
		explicit_bzero(out.p, out.len);
	buf_free(&out);
	if (rc == 1)
		c->source = xstrdup(prog);
	return rc;
}
