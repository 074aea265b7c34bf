/* `qimg login` and `qimg logout`: registry credentials, checked before they are kept (qimg-pull). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../pull/pull.h"
#include "cmd.h"

#define SECRET_MAX (64 << 10)

static const char login_help[] =
    "Usage: qimg login [OPTIONS] REGISTRY\n\n"
    "Check a user name and password against REGISTRY (GET /v2/ through its Basic or token authentication)\n"
    "and, when the registry accepts them, keep them for later pulls in the credentials file, mode 0600:\n"
    "--authfile, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json (podman's file), else\n"
    "~/.config/containers/auth.json (said so on stderr). Pulls also read ~/.docker/config.json and run the\n"
    "credential helpers it names (credsStore, credHelpers: docker-credential-NAME get).\n"
    "Without --password-stdin or -p, asks on the terminal.\n\n"
    "Options:\n"
    "  -u, --username USER    the user name (asked for when missing and on a terminal)\n"
    "  --password-stdin       read the password from standard input (one line)\n"
    "  -p, --password PASS    the password on the command line (visible to other users; avoid)\n"
    "  --authfile FILE        write this credentials file instead\n"
    "  --tls-verify=false     allow unverified TLS, then plain HTTP, for this registry (default true)\n"
    "  --certs-dir DIR        CA and client certificates as DIR/HOST:PORT/{*.crt,*.cert,*.key}\n"
    "  -h, --help             this help\n\n"
    "Examples:\n"
    "  qimg login -u alice registry.example.com\n"
    "  echo \"$TOKEN\" | qimg login -u ci --password-stdin ghcr.io\n"
    "  qimg login --tls-verify=false -u admin 127.0.0.1:5000\n";

static const char logout_help[] =
    "Usage: qimg logout [--authfile FILE] REGISTRY | --all\n\n"
    "Remove the credentials 'qimg login' kept for REGISTRY (every spelling of it: https://HOST/, HOST)\n"
    "from the credentials file (see qimg login --help). --all removes every entry. Credentials in\n"
    "~/.docker/config.json are left alone (use docker logout).\n\n"
    "Options:\n"
    "  -a, --all          remove the credentials of every registry\n"
    "  --authfile FILE    the credentials file to edit\n"
    "  -h, --help         this help\n\n"
    "Examples:\n"
    "  qimg logout registry.example.com\n"
    "  qimg logout --all\n";

struct login_args {
	const char *user, *pass, *authfile, *registry;
	bool pass_stdin;
	struct login_opts o;
};

static int parse_bool(const char *v, bool *out)
{
	if (!v || !strcmp(v, "true") || !strcmp(v, "false")) {
		*out = !v || !strcmp(v, "true");
		return 0;
	}
	cmd_error("login: --tls-verify takes true or false, not \"%s\"", v);
	return -1;
}

/* One option into a; -1 on a usage error. */
static int login_option(struct optscan *s, struct login_args *a)
{
	bool verify = true;

	if (!strcmp(s->name, "-u") || !strcmp(s->name, "--username"))
		a->user = s->value;
	else if (!strcmp(s->name, "-p") || !strcmp(s->name, "--password"))
		a->pass = s->value;
	else if (!strcmp(s->name, "--password-stdin"))
		a->pass_stdin = true;
	else if (!strcmp(s->name, "--authfile"))
		a->authfile = s->value;
	else if (!strcmp(s->name, "--certs-dir") || !strcmp(s->name, "--cert-dir"))
		a->o.certs_dir = s->value;
	else if (!strcmp(s->name, "--tls-verify")) {
		if (parse_bool(s->value, &verify) < 0)
			return -1;
		a->o.tls_verify_off = !verify;
	} else {
		cmd_error("login: unknown option %s (see qimg login --help)", s->name);
		return -1;
	}
	return 0;
}

/* Options (before or after REGISTRY); 1 to go on, 0 after --help, -1 on a usage error. */
static int login_options(int argc, char **argv, struct login_args *a)
{
	static const char *const with_value[] = {"-u",         "--username",  "-p",         "--password",
	                                         "--authfile", "--certs-dir", "--cert-dir", NULL};
	struct optscan s = {argc, argv, 1, NULL, NULL, NULL};
	int r, n = 0;

	while ((r = optscan_next(&s, with_value)) >= 0) {
		if (r == 0 && s.i >= argc)
			break;
		if (r == 0) {
			a->registry = argv[s.i++];
			n++;
		} else if (cmd_is_help(s.name)) {
			fputs(login_help, stdout);
			free(s.inl);
			return 0;
		} else if (login_option(&s, a) < 0) {
			r = -1;
			break;
		}
	}
	free(s.inl);
	if (r >= 0 && n != 1)
		cmd_error(n ? "login: expected one REGISTRY" : "login: missing REGISTRY (see qimg login --help)");
	if (r >= 0 && a->pass && a->pass_stdin)
		cmd_error("login: --password and --password-stdin exclude each other");
	return r < 0 || n != 1 || (a->pass && a->pass_stdin) ? -1 : 1;
}

/* One line from fd (without its line end) into a new string; NULL at once on EOF. */
static char *read_line(int fd)
{
	struct buf b = {0};
	char ch;
	ssize_t n;

	while ((n = read(fd, &ch, 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || ch == '\n' || b.len >= SECRET_MAX)
			break;
		buf_append(&b, &ch, 1);
	}
	if (!b.p && n == 0)
		return NULL;
	buf_append(&b, "", 0);
	if (b.len && b.p[b.len - 1] == '\r')
		b.p[--b.len] = '\0';
	return b.p;
}

/* Ask on the terminal (no echo for a secret). */
static char *ask(const char *prompt, bool secret)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	struct termios old, quiet;
	bool restore = false;
	char *line;

	if (fd < 0)
		return NULL;
	if (write_all(fd, prompt, strlen(prompt)) < 0) {
		close(fd);
		return NULL;
	}
	if (secret && tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	line = read_line(fd);
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		write_all(fd, "\n", 1);
	}
	close(fd);
	return line;
}

/* The user name and password from the options, stdin or the terminal (caller frees both). */
static int login_secrets(const struct login_args *a, char **user, char **pass)
{
	bool tty = isatty(STDIN_FILENO);

	*user = a->user ? xstrdup(a->user) : tty ? ask("Username: ", false) : NULL;
	if (!*user || !**user) {
		cmd_error("login: no user name: give -u USER");
		return -1;
	}
	if (a->pass_stdin)
		*pass = read_line(STDIN_FILENO);
	else
		*pass = a->pass ? xstrdup(a->pass) : tty ? ask("Password: ", true) : NULL;
	if (!*pass || !**pass) {
		cmd_error(a->pass_stdin
		              ? "login: no password on standard input"
		              : "login: no password: use --password-stdin (standard input is not a terminal)");
		return -1;
	}
	return 0;
}

static void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

int cmd_login(struct gopts *g, int argc, char **argv)
{
	struct login_args a = {0};
	struct qerr err = {0};
	char *user = NULL, *pass = NULL;
	autofree char *file = NULL;
	bool fallback;
	int r = login_options(argc, argv, &a), rc = 0;

	(void)g;
	if (r <= 0)
		return r == 0 ? 0 : EXIT_USAGE;
	file = login_auth_file(a.authfile, &fallback);
	if (!file) {
		cmd_error(
		    "login: no place for credentials: neither $XDG_RUNTIME_DIR nor $HOME is set (use --authfile)");
		return 1;
	}
	if (login_secrets(&a, &user, &pass) < 0)
		rc = EXIT_USAGE;
	if (rc == 0 && login_verify(a.registry, user, pass, &a.o, &err) < 0)
		rc = cmd_fail("login", &err, 1);
	if (rc == 0 && login_store(a.registry, user, pass, file, &err) < 0)
		rc = cmd_fail("login", &err, 1);
	secret_free(user);
	secret_free(pass);
	if (rc != 0)
		return rc;
	if (fallback)
		fprintf(stderr, "qimg: login: $XDG_RUNTIME_DIR is not set; credentials kept in %s\n", file);
	printf("Login Succeeded!\n");
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Options; 1 to go on, 0 after --help, -1 on a usage error. */
static int logout_options(int argc, char **argv, const char **registry, const char **authfile, bool *all)
{
	static const char *const with_value[] = {"--authfile", NULL};
	struct optscan s = {argc, argv, 1, NULL, NULL, NULL};
	int r, n = 0;

	while ((r = optscan_next(&s, with_value)) >= 0) {
		if (r == 0 && s.i >= argc)
			break;
		if (r == 0) {
			*registry = argv[s.i++];
			n++;
		} else if (cmd_is_help(s.name)) {
			fputs(logout_help, stdout);
			free(s.inl);
			return 0;
		} else if (!strcmp(s.name, "--authfile")) {
			*authfile = s.value;
		} else if (!strcmp(s.name, "-a") || !strcmp(s.name, "--all")) {
			*all = true;
		} else {
			cmd_error("logout: unknown option %s (see qimg logout --help)", s.name);
			r = -1;
			break;
		}
	}
	free(s.inl);
	if (r >= 0 && (n > 1 || (n == 1) == *all)) {
		cmd_error("logout: give one REGISTRY or --all (see qimg logout --help)");
		r = -1;
	}
	return r < 0 ? -1 : 1;
}

int cmd_logout(struct gopts *g, int argc, char **argv)
{
	const char *registry = NULL, *authfile = NULL;
	struct qerr err = {0};
	autofree char *file = NULL;
	bool all = false, fallback;
	int r = logout_options(argc, argv, &registry, &authfile, &all);

	(void)g;
	if (r <= 0)
		return r == 0 ? 0 : EXIT_USAGE;
	file = login_auth_file(authfile, &fallback);
	if (!file) {
		cmd_error("logout: neither $XDG_RUNTIME_DIR nor $HOME is set (use --authfile)");
		return 1;
	}
	r = login_remove(all ? NULL : registry, file, &err);
	if (r < 0)
		return cmd_fail("logout", &err, 1);
	if (r == 0 && !all) {
		cmd_error("logout: not logged in to %s (no entry in %s)", registry, file);
		return 1;
	}
	if (all)
		printf("Removed login credentials for all registries\n");
	else
		printf("Removed login credentials for %s\n", registry);
	return 0;
}
