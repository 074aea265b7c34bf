/* `qimg run [OPTIONS] IMAGE [CMD [ARG...]]`: flags in docker's spelling, turned into struct run_opts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cdi/cdi.h"
#include "../run/run.h"
#include "cmd.h"

static const char run_help[] =
    "Usage: qimg run [OPTIONS] IMAGE [CMD [ARG...]]\n\n"
    "Run a command in a fresh container of IMAGE (rootless: inside your /etc/subuid range, or with your own\n"
    "id as the only one, see --userns). The container's writes vanish when it ends unless --keep is given.\n"
    "The exit status is the command's (125: qimg's own error, 126: the command cannot be executed, 127: it\n"
    "was not found, 128+N: killed by signal N).\n\n"
    "Options:\n"
    "  -e, --env K=V|K          set a variable (K alone: take it from this environment)\n"
    "      --env-file FILE      read K=V lines from FILE\n"
    "  -v, --volume HOST:CTR[:ro]  bind HOST (file or dir) at CTR in the container\n"
    "  -w, --workdir DIR        working directory (absolute; created if missing)\n"
    "  -u, --user USER[:GROUP]  name or uid, group name or gid (from the image's /etc/passwd, /etc/group)\n"
    "      --entrypoint CMD     replace the image's entrypoint (and drop its default command)\n"
    "      --hostname NAME      container host name\n"
    "      --read-only          read-only root filesystem\n"
    "  -t, --tty                allocate a pseudo-terminal (stdin must be a terminal)\n"
    "  -i, --interactive        keep stdin open (otherwise the command reads /dev/null)\n"
    "      --rm                 accepted; containers are removed by default\n"
    "      --net, --network host|none   host network (default), or only a loopback interface\n"
    "      --overlay kernel|fuse   overlay implementation (default $QIMG_OVERLAY or kernel)\n"
    "      --keep NAME          keep the container's changes in the store as NAME (reused by the next\n"
    "                           --keep NAME; removed by `qimg rm NAME`)\n"
    "      --from NAME          start from kept container NAME's changes (read-only)\n"
    "      --cap-add CAP        add a capability (e.g. NET_RAW, ALL)\n"
    "      --cap-drop CAP       drop a capability (e.g. CHOWN, ALL)\n"
    "      --security-opt no-new-privileges   forbid gaining privileges (setuid binaries stop working)\n"
    "      --security-opt seccomp=unconfined  no syscall filter (by default docker's profile: keyrings, kexec,\n"
    "                           bpf, perf_event_open, io_uring, mount, new namespaces, ... fail with EPERM)\n"
    "      --userns auto|subuid|single   rootless: the full map of your /etc/subuid range (subuid), or only\n"
    "                           your own uid and gid as 0 (single: chown, setuid & co. succeed without doing\n"
    "                           anything); auto (default $QIMG_USERNS or auto): single when you have no\n"
    "                           subordinate range or no newuidmap. Sets QIMG_USERNS for the run's pull; root\n"
    "                           always has the host's ids\n"
    "      --name NAME          name the run (unique among running containers) for qimg ps and qimg kill\n"
    "      --cidfile FILE       write the run's id to FILE (refused if FILE exists; removed when the run ends)\n"
    "      --pull missing|always|never   pull IMAGE when it is not in the store (default), before every\n"
    "                           run, or never; the pull's output goes to stderr\n"
    "      --tls-verify=false   for that pull: plain HTTP or unverified TLS allowed\n"
    "      --authfile FILE      for that pull: the credentials file\n"
    "      --device VENDOR/CLASS=NAME   a CDI device (e.g. nvidia.com/gpu=0, nvidia.com/gpu=all) as its vendor's\n"
    "                           spec in /etc/cdi or /var/run/cdi describes it (device nodes, mounts, env, groups,\n"
    "                           hooks); repeatable. $QIMG_CDI_SPEC_DIRS (colon-separated) replaces those dirs\n"
    "      --device /dev/HOST[:/dev/CTR][:PERMS]   bind the host's device node (or every node below a\n"
    "                           directory, e.g. /dev/dri) into the container\n"
    "      --gpus all|N|device=ID[,ID...]   NVIDIA GPUs as docker reads it: the CDI devices nvidia.com/gpu=all,\n"
    "                           nvidia.com/gpu=0..N-1, nvidia.com/gpu=ID (nvidia-ctk cdi generate writes them)\n\n"
    "IMAGE is found as podman finds a local image: a name (a short name through registries.conf: its alias,\n"
    "else each unqualified-search registry in turn, then docker.io), a manifest digest, or a unique prefix of\n"
    "at least 12 hex digits of one (the DIGEST column of qimg images).\n\n"
    "Examples:\n"
    "  qimg run busybox echo hello\n"
    "  qimg run 260fb2f04866 true\n"
    "  qimg run --pull always --name web nginx   # elsewhere: qimg ps; qimg kill -s TERM web\n"
    "  qimg run --cidfile /run/job.id --name job busybox sleep 600\n"
    "  qimg run -i -t debian:bookworm bash\n"
    "  qimg run --net none -v \"$PWD\":/src:ro -w /src alpine ls -l\n"
    "  qimg run --device nvidia.com/gpu=all nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi\n"
    "  qimg run --keep dev debian:bookworm apt-get install -y make && qimg run --from dev debian:bookworm make -v\n";

static const char *const run_with_value[] = {
    "-e",        "--env",        "--env-file",     "-v",     "--volume",  "-w",        "--workdir",  "-u",
    "--user",    "--entrypoint", "--hostname",     "--net",  "--network", "--overlay", "--keep",     "--from",
    "--cap-add", "--cap-drop",   "--security-opt", "--name", "--cidfile", "--pull",    "--authfile", "--device",
    "--gpus",    "--userns",     NULL,
};

enum pull_policy { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };

struct run_args {
	struct run_opts o;
	const char *name, *cidfile, *authfile;
	enum pull_policy pull;
	bool tls_verify_off;
	struct strv env_files, env_flags, env;
	struct run_bind *binds;
	struct strv bind_strs;
	struct strv devices, gpus; /* --device, --gpus: resolved into cdi */
	struct cdi_plan cdi;
	const char *image;
};

static int parse_bind(struct run_args *a, const char *spec)
{
	char *copy = xstrdup(spec);
	strv_push_take(&a->bind_strs, copy);
	char *ctr = strchr(copy, ':');
	if (!ctr || ctr == copy) {
		cmd_error("run: -v %s: expected HOST:CONTAINER[:ro]", spec);
		return -1;
	}
	*ctr++ = '\0';
	char *opts = strchr(ctr, ':');
	if (opts)
		*opts++ = '\0';
	bool ro = false;
	for (char *save = NULL, *o = opts ? strtok_r(opts, ",", &save) : NULL; o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "ro"))
			ro = true;
		else if (strcmp(o, "rw") && strcmp(o, "z") && strcmp(o, "Z")) {
			cmd_error("run: -v %s: unknown option \"%s\" (ro, rw)", spec, o);
			return -1;
		}
	}
	if (*ctr != '/') {
		cmd_error("run: -v %s: the container path must be absolute", spec);
		return -1;
	}
	if (copy[0] != '/' && copy[0] != '.') {
		cmd_error("run: -v %s: named volumes are not supported; give a host path (/abs or ./rel)", spec);
		return -1;
	}
	a->binds = xrealloc(a->binds, (a->o.nbinds + 1) * sizeof *a->binds);
	a->binds[a->o.nbinds++] = (struct run_bind){copy, ctr, ro};
	return 0;
}

static void env_flag(struct strv *out, const char *v)
{
	if (strchr(v, '=')) {
		strv_push(out, v);
		return;
	}
	const char *host = getenv(v);
	if (host)
		strv_push_take(out, xasprintf("%s=%s", v, host));
}

static int parse_cap(uint64_t *mask, const char *name, const char *flag)
{
	uint64_t m;
	if (run_cap_parse(name, &m) < 0) {
		cmd_error("run: %s %s: unknown capability", flag, name);
		return -1;
	}
	*mask |= m;
	return 0;
}

static int parse_security_opt(struct run_args *a, const char *v)
{
	if (!strcmp(v, "no-new-privileges") || !strcmp(v, "no-new-privileges:true") ||
	    !strcmp(v, "no-new-privileges=true")) {
		a->o.no_new_privs = true;
		return 0;
	}
	if (!strcmp(v, "no-new-privileges:false") || !strcmp(v, "no-new-privileges=false"))
		return 0;
	if (!strcmp(v, "seccomp=unconfined") || !strcmp(v, "seccomp:unconfined")) {
		a->o.seccomp_unconfined = true;
		return 0;
	}
	if (!strncmp(v, "seccomp=", 8) || !strncmp(v, "seccomp:", 8)) {
		cmd_error("run: --security-opt %s: custom seccomp profiles are not supported (the default filter is "
		          "built in; seccomp=unconfined turns it off)",
		          v);
		return -1;
	}
	cmd_error("run: --security-opt %s: not supported (no-new-privileges, seccomp=unconfined)", v);
	return -1;
}

/* Combined short booleans: -i, -t, -it, -ti. */
static bool short_bools(struct run_args *a, const char *name)
{
	if (name[0] != '-' || name[1] == '-' || !name[1])
		return false;
	for (const char *p = name + 1; *p; p++)
		if (*p != 'i' && *p != 't')
			return false;
	for (const char *p = name + 1; *p; p++) {
		if (*p == 'i')
			a->o.interactive = true;
		else
			a->o.tty = true;
	}
	return true;
}

static bool is(const char *name, const char *a, const char *b)
{
	return !strcmp(name, a) || (b && !strcmp(name, b));
}

static int parse_value_opt(struct run_args *a, const char *n, const char *v)
{
	struct run_opts *o = &a->o;
	if (is(n, "-e", "--env"))
		env_flag(&a->env_flags, v);
	else if (is(n, "--env-file", NULL))
		strv_push(&a->env_files, v);
	else if (is(n, "-v", "--volume"))
		return parse_bind(a, v);
	else if (is(n, "-w", "--workdir")) {
		if (*v != '/') {
			cmd_error("run: the working directory '%s' is invalid, it needs to be an absolute path", v);
			return -1;
		}
		o->workdir = v;
	} else if (is(n, "-u", "--user"))
		o->user = v;
	else if (is(n, "--entrypoint", NULL))
		o->entrypoint = v;
	else if (is(n, "--hostname", NULL))
		o->hostname = v;
	else if (is(n, "--net", "--network")) {
		if (strcmp(v, "host") && strcmp(v, "none")) {
			cmd_error("run: --net %s: only host and none are supported", v);
			return -1;
		}
		o->net_none = !strcmp(v, "none");
	} else if (is(n, "--overlay", NULL)) {
		if (ovl_kind_parse(v, &o->overlay) < 0) {
			cmd_error("run: --overlay %s: expected kernel or fuse", v);
			return -1;
		}
	} else if (is(n, "--keep", NULL))
		o->keep = v;
	else if (is(n, "--from", NULL))
		o->from = v;
	else if (is(n, "--cap-add", NULL))
		return parse_cap(&o->cap_add, v, n);
	else if (is(n, "--cap-drop", NULL))
		return parse_cap(&o->cap_drop, v, n);
	else if (is(n, "--security-opt", NULL))
		return parse_security_opt(a, v);
	else if (is(n, "--name", NULL)) {
		if (!run_name_valid(v)) {
			cmd_error("run: --name %s: invalid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128)", v);
			return -1;
		}
		a->name = v;
	} else if (is(n, "--cidfile", NULL))
		a->cidfile = v;
	else if (is(n, "--authfile", NULL))
		a->authfile = v;
	else if (is(n, "--device", NULL))
		strv_push(&a->devices, v);
	else if (is(n, "--gpus", NULL))
		strv_push(&a->gpus, v);
	else if (is(n, "--userns", NULL)) {
		/* The mode travels in the environment: the pull this run may start and its unpackers follow it. */
		if (!userns_mode_valid(v)) {
			cmd_error("run: --userns %s: expected auto, subuid or single", v);
			return -1;
		}
		if (setenv(USERNS_ENV, v, 1) < 0) {
			cmd_error("run: --userns %s: setenv: %s", v, strerror(errno));
			return -1;
		}
	} else if (is(n, "--pull", NULL)) {
		if (!strcmp(v, "missing"))
			a->pull = PULL_MISSING;
		else if (!strcmp(v, "always"))
			a->pull = PULL_ALWAYS;
		else if (!strcmp(v, "never"))
			a->pull = PULL_NEVER;
		else {
			cmd_error("run: --pull %s: expected missing, always or never", v);
			return -1;
		}
	}
	return 0;
}

/* Returns 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_args(struct run_args *a, int argc, char **argv)
{
	struct optscan s = {.argc = argc, .argv = argv, .i = 1};
	int r;
	a->o.overlay = ovl_kind_default();
	a->o.record_fd = -1;
	while ((r = optscan_next(&s, run_with_value)) == 1) {
		if (cmd_is_help(s.name)) {
			fputs(run_help, stdout);
			return 1;
		}
		if (is(s.name, "--tls-verify", NULL))
			a->tls_verify_off = s.value && !strcmp(s.value, "false");
		else if (s.value) {
			if (parse_value_opt(a, s.name, s.value) < 0) {
				free(s.inl); /* "--name=value" split by optscan */
				return -1;
			}
		} else if (is(s.name, "--read-only", NULL))
			a->o.read_only = true;
		else if (is(s.name, "--tty", NULL))
			a->o.tty = true;
		else if (is(s.name, "--interactive", NULL))
			a->o.interactive = true;
		else if (is(s.name, "--slurm-holder", NULL)) /* hidden: the Slurm plugin's (run/holder.c) */
			a->o.holder = true;
		else if (!is(s.name, "--rm", NULL) && !short_bools(a, s.name)) {
			cmd_error("run: unknown option %s (see qimg run --help)", s.name);
			free(s.inl);
			return -1;
		}
	}
	if (r < 0)
		return -1;
	if (s.i >= argc) {
		cmd_error("run: missing IMAGE (see qimg run --help)");
		return -1;
	}
	a->image = argv[s.i];
	a->o.args = argv + s.i + 1;
	a->o.nargs = (size_t)(argc - s.i - 1);
	a->o.binds = a->binds;
	return 0;
}

/* Docker's order: --env-file first, then -e (later wins). */
static int collect_env(struct run_args *a, struct qerr *err)
{
	for (size_t i = 0; i < a->env_files.n; i++)
		if (run_env_file_read(a->env_files.v[i], &a->env, err) < 0)
			return -1;
	for (size_t i = 0; i < a->env_flags.n; i++)
		strv_push(&a->env, a->env_flags.v[i]);
	a->o.env = &a->env;
	return 0;
}

/* --device/--gpus: only then is anything resolved (cmd/run_devices.c). */
static int collect_devices(struct run_args *a, struct qerr *err)
{
	if (!a->devices.n && !a->gpus.n)
		return 0;
	if (cmd_run_devices(&a->devices, &a->gpus, &a->cdi, err) < 0)
		return -1;
	a->o.cdi = &a->cdi;
	return 0;
}

static void run_args_free(struct run_args *a)
{
	strv_free(&a->env_files);
	strv_free(&a->env_flags);
	strv_free(&a->env);
	strv_free(&a->bind_strs);
	free(a->binds);
	strv_free(&a->devices);
	strv_free(&a->gpus);
	cdi_plan_free(&a->cdi);
}

/* Resolve the image and take its lease under the shared store lock (held only for that). */
static int resolve_and_lease(struct gopts *g, struct run_args *a, struct store *st, struct image_spec *spec,
                             struct qerr *err)
{
	autoclose int slock = store_lock(st, false, true, err);
	if (slock < 0 || cmd_resolve_image(g, a->image, st, spec, err) < 0)
		return -1;
	return store_image_lease_take(st, spec->manifest_digest, err);
}

/* `qimg-pull pull IMAGE` with this run's store, log level and pull options; its stdout goes to our stderr. */
static int pull_image_helper(const struct run_args *a, const struct store *st, struct qerr *err)
{
	autofree char *helper = cmd_helper_find(err);
	if (!helper)
		return -1;
	const char *argv[12];
	int n = 0;
	argv[n++] = helper;
	argv[n++] = "--store";
	argv[n++] = st->root;
	if (qlog_level != LOG_NORMAL)
		argv[n++] = qlog_level == LOG_QUIET ? "-q" : qlog_level == LOG_VERBOSE ? "-v" : "-vv";
	argv[n++] = "pull";
	if (a->tls_verify_off)
		argv[n++] = "--tls-verify=false";
	if (a->authfile) {
		argv[n++] = "--authfile";
		argv[n++] = a->authfile;
	}
	argv[n++] = "--";
	argv[n++] = a->image;
	argv[n] = NULL;
	log_info("run: pulling %s", a->image);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return qerr_sys(err, "fork for %s", helper);
	if (pid == 0) {
		if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(EXIT_QIMG);
		execv(helper, (char *const *)argv);
		fprintf(stderr, "qimg: run: exec %s: %s\n", helper, strerror(errno));
		_exit(EXIT_QIMG);
	}
	int wst;
	while (waitpid(pid, &wst, 0) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "wait for %s", helper);
	if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
		return qerr_set(err, "pull %s failed (%s %d); see the message above", a->image,
		                WIFEXITED(wst) ? "exit status" : "signal",
		                WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
	return 0;
}

/* The image's lease after --pull's policy: always pulls first, missing pulls when the store lacks it. */
static int image_get(struct gopts *g, struct run_args *a, struct store *st, struct image_spec *spec, struct qerr *err)
{
	if (a->pull == PULL_ALWAYS && pull_image_helper(a, st, err) < 0)
		return -1;
	int lease = resolve_and_lease(g, a, st, spec, err);
	if (lease >= 0 || a->pull != PULL_MISSING || err->code != ENOENT)
		return lease;
	if (pull_image_helper(a, st, err) < 0)
		return -1;
	return resolve_and_lease(g, a, st, spec, err);
}

/* --cidfile: created exclusively, like docker. */
static int cidfile_write(const char *path, const char *id, struct qerr *err)
{
	autoclose int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? qerr_set(err, "--cidfile %s: the file exists (remove it first)", path)
		                       : qerr_sys(err, "--cidfile %s", path);
	if (write_all(fd, id, strlen(id)) < 0) {
		qerr_sys(err, "--cidfile %s: write", path);
		(void)unlink(path);
		return -1;
	}
	return 0;
}

/* The command as the record shows it: the entrypoint, then the arguments or the image's Cmd. */
static void record_command(const struct run_args *a, const struct image_spec *spec, struct strv *out)
{
	if (a->o.entrypoint && *a->o.entrypoint)
		strv_push(out, a->o.entrypoint);
	else if (!a->o.entrypoint)
		for (size_t i = 0; i < spec->entrypoint.n; i++)
			strv_push(out, spec->entrypoint.v[i]);
	for (size_t i = 0; i < a->o.nargs; i++)
		strv_push(out, a->o.args[i]);
	for (size_t i = 0; a->o.nargs == 0 && !a->o.entrypoint && i < spec->cmd.n; i++)
		strv_push(out, spec->cmd.v[i]);
}

/* Register the run (live/<id>) and write --cidfile. Returns the record's fd. */
static int register_run(struct run_args *a, struct store *st, const struct image_spec *spec, char *id, struct qerr *err)
{
	struct strv cmd = {0};
	record_command(a, spec, &cmd);
	struct run_record_new rn = {a->name, a->image, cmd.v, cmd.n};
	int fd = run_record_create(st, &rn, id, err);
	strv_free(&cmd);
	if (fd >= 0 && a->cidfile && cidfile_write(a->cidfile, id, err) < 0) {
		run_record_end(fd);
		return -1;
	}
	return fd;
}

int cmd_run(struct gopts *g, int argc, char **argv)
{
	double t0 = qlog_level >= LOG_DEBUG ? now_mono() : 0;
	struct run_args a = {0};
	int pr = parse_args(&a, argc, argv);
	if (pr != 0) {
		run_args_free(&a);
		return pr > 0 ? 0 : EXIT_QIMG;
	}
	struct qerr err = {0};
	struct store st;
	struct image_spec spec = {0};
	int status = -1, lease = -1;
	char id[RUN_ID_LEN + 1];
	if (collect_env(&a, &err) < 0 || collect_devices(&a, &err) < 0 || cmd_open_store(g, &st, &err) < 0) {
		run_args_free(&a);
		return cmd_fail("run", &err, EXIT_QIMG);
	}
	lease = image_get(g, &a, &st, &spec, &err);
	if (t0 > 0)
		log_debug("run: store opened, image resolved, lease taken in %.1f us", (now_mono() - t0) * 1e6);
	if (lease >= 0)
		a.o.record_fd = register_run(&a, &st, &spec, id, &err);
	if (a.o.record_fd >= 0) {
		if (t0 > 0)
			log_debug("run: registered as %s after %.1f us", id, (now_mono() - t0) * 1e6);
		a.o.st = &st;
		a.o.spec = &spec;
		a.o.image = a.image;
		a.o.run_id = id;
		status = run_container(&a.o, &err);
		if (a.cidfile)
			(void)unlink(a.cidfile);
		run_record_end(a.o.record_fd);
	}
	if (lease >= 0)
		close(lease);
	if (status < 0)
		status = cmd_fail("run", &err, EXIT_QIMG);
	store_spec_free(&spec);
	store_close(&st);
	run_args_free(&a);
	return status;
}
