/* spank_qimg: a SPANK plugin that runs Slurm tasks in qimg containers, with pyxis's options
   (`srun --container-image=IMG cmd`). docs/ARCHITECTURE.md "The Slurm plugin" has the process model:

   - slurmstepd, once per step and node (slurm_spank_user_init, as the job's user): starts `qimg run
     --slurm-holder IMG` (run/holder.c), which pulls IMG when the node's store lacks it, builds the container
     (user namespace, mount namespace, overlay root) in the host's pid namespace and reports its pid, the image's
     Env and working directory on a pipe;
   - every task (slurm_spank_task_init, as the user, just before slurmstepd execs the command): setns()es into
     the holder's user and mount namespaces, chdirs and sets the image's Env over the job's; slurmstepd then
     execs the command inside. Tasks stay in the host's pid namespace: Slurm sees, signals and kills them;
   - slurmstepd at the step's end (slurm_spank_exit): TERM to the holder's qimg, which ends the container.

   The plugin links nothing but libc: qimg's runner stays in the `qimg` binary. Errors found in slurmstepd are
   kept and reported by each task on its stderr (srun's), which then fails. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/spank.h>

SPANK_PLUGIN(qimg, 1);

#ifndef QIMG_BINDIR
#define QIMG_BINDIR "/usr/local/bin"
#endif

#define ENV_PREFIX   "QIMG_CONTAINER_"
#define ERR_MAX      1024
#define HOLDER_MAX   (1u << 20) /* the holder's record: pid, workdir, the image's Env */
#define STOP_WAIT_MS 10000
#define BATCH_STEP   0xfffffffbu /* slurm.h SLURM_BATCH_SCRIPT: the batch script's step id */

/* Tri-state flags: not given, off, on. */
enum { UNSET = -1 };

/* The plugstack.conf arguments. */
static struct {
	char *qimg;       /* qimg=PATH (default $(BINDIR)/qimg) */
	char *store;      /* store=TEMPLATE: %u user name, %U uid, %n node name, %% a % (default qimg's own) */
	char *pull;       /* pull=missing|always|never */
	char *registries; /* registries_conf=PATH: QIMG_REGISTRIES_CONF for the pull */
	int mount_home;   /* mount_home=0|1 (default 0, as enroot's ENROOT_MOUNT_HOME) */
	int remap_root;   /* remap_root=0|1 (default 0: the user's own id inside) */
	int writable;     /* writable=0|1 (default 1) */
	char *tls_verify; /* tls_verify=false: plain HTTP/unverified TLS registries (test clusters) */
	int scope_global; /* container_scope=job|global (default job) */
} cfg = {NULL, NULL, NULL, NULL, 0, 0, 1, NULL, 0};

/* The options of this job/step, from the command line or their QIMG_CONTAINER_* forms. */
static struct {
	char *image, *mounts, *workdir, *env, *name;
	int writable, mount_home, remap_root, entrypoint;
} opt = {NULL, NULL, NULL, NULL, NULL, UNSET, UNSET, UNSET, UNSET};

/* slurmstepd's view of the step's container; inherited by every task it forks. */
static struct {
	bool active;         /* a container was asked for */
	char error[ERR_MAX]; /* the step's error, reported by each task */
	pid_t qimg;          /* the holder's qimg process (our child) */
	pid_t holder;        /* the process whose namespaces the tasks join */
	int errfd;           /* the holder's stderr (kept open: it may still write) */
	char *workdir;
	char **env;    /* the image's Env, K=V */
	uint64_t caps; /* the bounding set for uid 0 inside (qimg run's default set) */
	bool have_caps;
	size_t nenv;
	uid_t uid;
	gid_t gid;
} step = {.qimg = -1, .holder = -1, .errfd = -1};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void step_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void step_fail(const char *fmt, ...)
{
	if (step.error[0])
		return; /* the first error is the one to tell */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(step.error, sizeof step.error, fmt, ap);
	va_end(ap);
}

/* ---- options ---- */

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
	return v && !*dst ? -1 : 0;
}

enum {
	O_IMAGE,
	O_MOUNTS,
	O_WORKDIR,
	O_ENV,
	O_NAME,
	O_WRITABLE,
	O_READONLY,
	O_MOUNT_HOME,
	O_NO_MOUNT_HOME,
	O_REMAP_ROOT,
	O_NO_REMAP_ROOT,
	O_ENTRYPOINT,
	O_NO_ENTRYPOINT,
};

static int on_option(int val, const char *arg, int remote)
{
	(void)remote;
	switch (val) {
	case O_IMAGE: return set_str(&opt.image, arg);
	case O_MOUNTS: return set_str(&opt.mounts, arg);
	case O_WORKDIR: return set_str(&opt.workdir, arg);
	case O_ENV: return set_str(&opt.env, arg);
	case O_NAME: return set_str(&opt.name, arg);
	case O_WRITABLE:
	case O_READONLY: opt.writable = val == O_WRITABLE; return 0;
	case O_MOUNT_HOME:
	case O_NO_MOUNT_HOME: opt.mount_home = val == O_MOUNT_HOME; return 0;
	case O_REMAP_ROOT:
	case O_NO_REMAP_ROOT: opt.remap_root = val == O_REMAP_ROOT; return 0;
	case O_ENTRYPOINT:
	case O_NO_ENTRYPOINT: opt.entrypoint = val == O_ENTRYPOINT; return 0;
	}
	return -1;
}

static struct spank_option options[] = {
    {"container-image", "IMAGE", "[qimg] the image to run the tasks in (pulled when the node lacks it)", 1, O_IMAGE,
     on_option},
    {"container-mounts", "SRC:DST[:FLAGS],...", "[qimg] bind mounts (FLAGS: ro or rw, joined with +)", 1, O_MOUNTS,
     on_option},
    {"container-workdir", "PATH", "[qimg] working directory inside the container", 1, O_WORKDIR, on_option},
    {"container-env", "NAME[,NAME...]", "[qimg] keep these variables' values from the host over the image's", 1, O_ENV,
     on_option},
    {"container-name", "NAME", "[qimg] keep the container's changes as NAME, reused by later steps of the job", 1,
     O_NAME, on_option},
    {"container-writable", NULL, "[qimg] writable root filesystem (changes vanish unless --container-name)", 0,
     O_WRITABLE, on_option},
    {"container-readonly", NULL, "[qimg] read-only root filesystem", 0, O_READONLY, on_option},
    {"container-mount-home", NULL, "[qimg] bind mount the user's home directory", 0, O_MOUNT_HOME, on_option},
    {"no-container-mount-home", NULL, "[qimg] do not bind mount the user's home directory", 0, O_NO_MOUNT_HOME,
     on_option},
    {"container-remap-root", NULL, "[qimg] be root (uid 0) inside the container", 0, O_REMAP_ROOT, on_option},
    {"no-container-remap-root", NULL, "[qimg] keep your own uid inside the container (default)", 0, O_NO_REMAP_ROOT,
     on_option},
    {"container-entrypoint", NULL, "[qimg] run the image's entrypoint (not supported yet)", 0, O_ENTRYPOINT, on_option},
    {"no-container-entrypoint", NULL, "[qimg] do not run the image's entrypoint (default)", 0, O_NO_ENTRYPOINT,
     on_option},
    SPANK_OPTIONS_TABLE_END,
};

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "y"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "n"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* plugstack.conf: `required .../spank_qimg.so [qimg=PATH] [store=TEMPLATE] [pull=POLICY] ...` */
static int config_parse(int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		const char *a = av[i], *eq = strchr(a, '=');
		if (!eq) {
			slurm_error("spank_qimg: plugstack argument \"%s\": expected KEY=VALUE", a);
			return -1;
		}
		size_t kl = (size_t)(eq - a);
		const char *v = eq + 1;
		int rc = 0;
		if (kl == 4 && !strncmp(a, "qimg", kl))
			rc = set_str(&cfg.qimg, v);
		else if (kl == 5 && !strncmp(a, "store", kl))
			rc = set_str(&cfg.store, v);
		else if (kl == 4 && !strncmp(a, "pull", kl)) {
			if (strcmp(v, "missing") && strcmp(v, "always") && strcmp(v, "never")) {
				slurm_error("spank_qimg: pull=%s: expected missing, always or never", v);
				return -1;
			}
			rc = set_str(&cfg.pull, v);
		} else if (kl == 15 && !strncmp(a, "registries_conf", kl))
			rc = set_str(&cfg.registries, v);
		else if (kl == 10 && !strncmp(a, "tls_verify", kl))
			rc = set_str(&cfg.tls_verify, v);
		else if (kl == 10 && !strncmp(a, "mount_home", kl))
			rc = parse_bool(v, &cfg.mount_home);
		else if (kl == 10 && !strncmp(a, "remap_root", kl))
			rc = parse_bool(v, &cfg.remap_root);
		else if (kl == 8 && !strncmp(a, "writable", kl))
			rc = parse_bool(v, &cfg.writable);
		else if (kl == 15 && !strncmp(a, "container_scope", kl)) {
			if (strcmp(v, "job") && strcmp(v, "global")) {
				slurm_error("spank_qimg: container_scope=%s: expected job or global", v);
				return -1;
			}
			cfg.scope_global = !strcmp(v, "global");
		} else {
			slurm_error(
			    "spank_qimg: unknown plugstack argument \"%s\" (qimg, store, pull, registries_conf, "
			    "tls_verify, mount_home, remap_root, writable, container_scope)",
			    a);
			return -1;
		}
		if (rc < 0) {
			slurm_error("spank_qimg: plugstack argument \"%s\": bad value", a);
			return -1;
		}
	}
	return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();
	if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR && ctx != S_CTX_REMOTE)
		return 0;
	if (config_parse(ac, av) < 0)
		return -1;
	for (struct spank_option *o = options; o->name; o++)
		if (spank_option_register(sp, o) != ESPANK_SUCCESS) {
			slurm_error("spank_qimg: cannot register --%s", o->name);
			return -1;
		}
	return 0;
}

/* QIMG_CONTAINER_<NAME> in the job's environment, for an option not given on the command line. */
static void env_option(spank_t sp, const char *name, char **str, int *flag)
{
	char key[64], val[PATH_MAX * 4];
	snprintf(key, sizeof key, ENV_PREFIX "%s", name);
	if (spank_getenv(sp, key, val, sizeof val) != ESPANK_SUCCESS)
		return;
	if (str && !*str && *val)
		(void)set_str(str, val);
	if (flag && *flag == UNSET && parse_bool(val, flag) < 0)
		step_fail("%s=%s: expected 1 or 0", key, val);
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	env_option(sp, "IMAGE", &opt.image, NULL);
	env_option(sp, "MOUNTS", &opt.mounts, NULL);
	env_option(sp, "WORKDIR", &opt.workdir, NULL);
	env_option(sp, "ENV", &opt.env, NULL);
	env_option(sp, "NAME", &opt.name, NULL);
	env_option(sp, "WRITABLE", NULL, &opt.writable);
	if (opt.writable == UNSET) {
		int ro = UNSET;
		env_option(sp, "READONLY", NULL, &ro);
		if (ro != UNSET)
			opt.writable = !ro;
	}
	env_option(sp, "MOUNT_HOME", NULL, &opt.mount_home);
	env_option(sp, "REMAP_ROOT", NULL, &opt.remap_root);
	env_option(sp, "ENTRYPOINT", NULL, &opt.entrypoint);
	step.active = opt.image != NULL;
	return 0;
}

/* pyxis passes enroot URIs: [docker://][USER@][REGISTRY#]IMAGE[:TAG]. qimg's reference is REGISTRY/IMAGE[:TAG]
   (credentials come from the auth file, so USER@ is dropped). A squashfs path or another enroot scheme is
   refused by name. Returns a new string, NULL with the step's error set. */
static char *image_ref(const char *uri)
{
	const char *p = uri;
	if (!strncmp(p, "docker://", 9))
		p += 9;
	else if (strstr(p, "://")) {
		step_fail("--container-image=%s: only docker:// images (registry references) are supported", uri);
		return NULL;
	}
	if (p[0] == '/' || !strncmp(p, "./", 2)) {
		step_fail("--container-image=%s: squashfs files are not supported; give a registry reference", uri);
		return NULL;
	}
	const char *at = strchr(p, '@');
	if (at && strncmp(at + 1, "sha256:", 7) != 0)
		p = at + 1; /* USER@; an @ before "sha256:" is a digest (IMAGE@sha256:...) */
	char *ref = strdup(p);
	if (!ref)
		return NULL;
	char *h = strchr(ref, '#');
	if (h) {
		if (strchr(h + 1, '#')) {
			step_fail("--container-image=%s: more than one '#'", uri);
			free(ref);
			return NULL;
		}
		*h = '/';
	}
	if (!*ref) {
		step_fail("--container-image=%s: empty image reference", uri);
		free(ref);
		return NULL;
	}
	return ref;
}

/* ---- the holder's command line ---- */

struct argv {
	char **v;
	size_t n, cap;
};

static void argv_push(struct argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		char **v = realloc(a->v, cap * sizeof *v);
		if (!v)
			abort();
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n] = strdup(s);
	if (!a->v[a->n])
		abort();
	a->v[++a->n] = NULL;
}

static void argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct argv){0};
}

/* store=TEMPLATE with %u (user name), %U (uid), %n (node name), %% expanded. */
static int store_expand(const char *tmpl, const char *user, uid_t uid, const char *node, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = tmpl; *p; p++) {
		char num[16];
		const char *add = NULL;
		char one[2] = {*p, 0};
		if (*p != '%')
			add = one;
		else {
			p++;
			if (*p == 'u')
				add = user;
			else if (*p == 'U')
				snprintf(num, sizeof num, "%u", (unsigned)uid), add = num;
			else if (*p == 'n')
				add = node;
			else if (*p == '%')
				add = "%";
			else {
				step_fail("spank_qimg: store=%s: unknown %%%c (%%u, %%U, %%n, %%%%)", tmpl,
				          *p ? *p : ' ');
				return -1;
			}
		}
		size_t l = strlen(add);
		if (o + l >= size) {
			step_fail("spank_qimg: store=%s: the path is too long", tmpl);
			return -1;
		}
		memcpy(out + o, add, l);
		o += l;
		if (!*p)
			break;
	}
	out[o] = '\0';
	return 0;
}

/* --container-mounts=SRC[:DST[:FLAGS]],... -> qimg's -v SRC:DST[:ro]. FLAGS: ro, rw, joined with +. A relative
   SRC ("./x") is the job's working directory's (cwd), not slurmstepd's. */
static int mounts_add(const char *spec, const char *cwd, struct argv *a)
{
	char *copy = strdup(spec), *save = NULL;
	if (!copy)
		return -1;
	int rc = 0;
	for (char *m = strtok_r(copy, ",", &save); m && rc == 0; m = strtok_r(NULL, ",", &save)) {
		char *src = m, *dst = strchr(m, ':'), *flags = NULL;
		if (dst) {
			*dst++ = '\0';
			flags = strchr(dst, ':');
			if (flags)
				*flags++ = '\0';
		} else
			dst = src;
		bool ro = false;
		for (char *fs = NULL, *f = flags ? strtok_r(flags, "+", &fs) : NULL; f && rc == 0;
		     f = strtok_r(NULL, "+", &fs)) {
			if (!strcmp(f, "ro"))
				ro = true;
			else if (strcmp(f, "rw") && strcmp(f, "rbind") && strcmp(f, "bind")) {
				step_fail("--container-mounts=%s: unsupported mount flag \"%s\" (ro, rw)", spec, f);
				rc = -1;
			}
		}
		struct stat sb;
		char abs[PATH_MAX];
		if (rc < 0)
			break;
		if (!strncmp(src, "./", 2)) {
			if (cwd[0] != '/' || snprintf(abs, sizeof abs, "%s/%s", cwd, src + 2) >= (int)sizeof abs) {
				step_fail("--container-mounts=%s: the job's working directory is unknown", spec);
				rc = -1;
				break;
			}
			src = abs;
		}
		if (src[0] != '/') {
			step_fail(
			    "--container-mounts=%s: the source \"%s\" must be an absolute path (tmpfs and umount are "
			    "not supported)",
			    spec, src);
			rc = -1;
		} else if (dst[0] != '/') {
			step_fail("--container-mounts=%s: the destination \"%s\" must be an absolute path", spec, dst);
			rc = -1;
		} else if (stat(src, &sb) < 0) {
			step_fail("--container-mounts=%s: %s: %s", spec, src, strerror(errno));
			rc = -1;
		} else {
			char *v = NULL;
			if (asprintf(&v, "%s:%s%s", src, dst, ro ? ":ro" : "") < 0)
				rc = -1;
			else {
				argv_push(a, "-v");
				argv_push(a, v);
				free(v);
			}
		}
	}
	free(copy);
	return rc;
}

static int job_env(spank_t sp, const char *name, char *buf, size_t size)
{
	return spank_getenv(sp, name, buf, (int)size) == ESPANK_SUCCESS ? 0 : -1;
}

/* The batch script must exist inside the container at the path slurmstepd execs it by. */
static int batch_script_add(spank_t sp, struct argv *a)
{
	uint32_t stepid = 0;
	int argc = 0;
	char **argv = NULL;
	if (spank_get_item(sp, S_JOB_STEPID, &stepid) != ESPANK_SUCCESS || stepid != BATCH_STEP)
		return 0;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || argv[0][0] != '/') {
		step_fail("sbatch --container-image: cannot find the batch script's path");
		return -1;
	}
	char *v = NULL;
	if (asprintf(&v, "%s:%s:ro", argv[0], argv[0]) < 0)
		return -1;
	argv_push(a, "-v");
	argv_push(a, v);
	free(v);
	return 0;
}

static int holder_argv(spank_t sp, struct argv *a)
{
	char user[256] = "", node[256] = "", home[PATH_MAX] = "", store[PATH_MAX];
	/* %u is the passwd name of the job's uid, never the job's (user-set) $USER. */
	struct passwd pwbuf, *pw = NULL;
	char pwmem[4096];
	if (getpwuid_r(step.uid, &pwbuf, pwmem, sizeof pwmem, &pw) == 0 && pw)
		snprintf(user, sizeof user, "%s", pw->pw_name);
	else if (cfg.store && strstr(cfg.store, "%u")) {
		step_fail("spank_qimg: store=%s: no passwd entry for uid %u", cfg.store, (unsigned)step.uid);
		return -1;
	}
	/* SLURMD_NODENAME is set only for the tasks; SLURM_TOPOLOGY_ADDR ends with the node's name already. */
	if (job_env(sp, "SLURMD_NODENAME", node, sizeof node) < 0 &&
	    job_env(sp, "SLURM_TOPOLOGY_ADDR", node, sizeof node) == 0 && strrchr(node, '.'))
		memmove(node, strrchr(node, '.') + 1, strlen(strrchr(node, '.') + 1) + 1);
	(void)job_env(sp, "HOME", home, sizeof home);
	argv_push(a, cfg.qimg ? cfg.qimg : QIMG_BINDIR "/qimg");
	if (cfg.store) {
		if (store_expand(cfg.store, user, step.uid, node, store, sizeof store) < 0)
			return -1;
		argv_push(a, "--store");
		argv_push(a, store);
	}
	argv_push(a, "-q");
	argv_push(a, "run");
	argv_push(a, "--slurm-holder");
	argv_push(a, "--pull");
	argv_push(a, cfg.pull ? cfg.pull : "missing");
	if (cfg.tls_verify && !strcmp(cfg.tls_verify, "false"))
		argv_push(a, "--tls-verify=false");
	char cwd[PATH_MAX] = "";
	(void)job_env(sp, "PWD", cwd, sizeof cwd);
	if (opt.mounts && mounts_add(opt.mounts, cwd, a) < 0)
		return -1;
	if (opt.mount_home == UNSET ? cfg.mount_home : opt.mount_home) {
		if (home[0] != '/') {
			step_fail("--container-mount-home: the job has no absolute HOME");
			return -1;
		}
		char *v = NULL;
		if (asprintf(&v, "%s:%s", home, home) < 0)
			return -1;
		argv_push(a, "-v");
		argv_push(a, v);
		free(v);
	}
	if (batch_script_add(sp, a) < 0)
		return -1;
	if (opt.workdir) {
		if (opt.workdir[0] != '/') {
			step_fail("--container-workdir=%s: must be an absolute path", opt.workdir);
			return -1;
		}
		argv_push(a, "-w");
		argv_push(a, opt.workdir);
	}
	if (!(opt.writable == UNSET ? cfg.writable : opt.writable))
		argv_push(a, "--read-only");
	if (opt.name) {
		uint32_t jobid = 0;
		char keep[160];
		(void)spank_get_item(sp, S_JOB_ID, &jobid);
		/* Job scope (pyxis's default): the name is the job's own, so two jobs' "--container-name=x" never meet,
		   and the epilog removes it. Global scope: the user's kept container NAME (`qimg run --keep NAME`). */
		if (strlen(opt.name) > 100 || !*opt.name) {
			step_fail("--container-name=%s: too long or empty", opt.name);
			return -1;
		}
		if (cfg.scope_global)
			snprintf(keep, sizeof keep, "%s", opt.name);
		else
			snprintf(keep, sizeof keep, "slurm-%u-%s", (unsigned)jobid, opt.name);
		argv_push(a, "--keep");
		argv_push(a, keep);
	}
	char *ref = image_ref(opt.image);
	if (!ref)
		return -1;
	argv_push(a, "--");
	argv_push(a, ref);
	free(ref);
	argv_push(a, "slurm-holder"); /* never executed: the holder runs no command */
	return 0;
}

/* The holder's environment: slurmstepd's, with the job user's HOME, USER, LOGNAME, XDG_RUNTIME_DIR. */
static char **holder_env(spank_t sp)
{
	static const char *const from_job[] = {"HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR", NULL};
	extern char **environ;
	struct argv e = {0};
	for (char **p = environ; *p; p++) {
		bool skip = !strncmp(*p, "QIMG_STORE=", 11) || !strncmp(*p, "QIMG_REGISTRIES_CONF=", 21);
		for (const char *const *k = from_job; *k && !skip; k++) {
			size_t l = strlen(*k);
			skip = !strncmp(*p, *k, l) && (*p)[l] == '=';
		}
		if (!skip)
			argv_push(&e, *p);
	}
	for (const char *const *k = from_job; *k; k++) {
		char val[PATH_MAX], *kv = NULL;
		if (job_env(sp, *k, val, sizeof val) == 0 && asprintf(&kv, "%s=%s", *k, val) >= 0) {
			argv_push(&e, kv);
			free(kv);
		}
	}
	if (cfg.registries) {
		char *kv = NULL;
		if (asprintf(&kv, "QIMG_REGISTRIES_CONF=%s", cfg.registries) >= 0) {
			argv_push(&e, kv);
			free(kv);
		}
	}
	return e.v;
}

/* ---- starting and stopping the holder ---- */

/* Read the holder's record (until "end") from fd. 0 with step.holder/workdir/env set, -1 at EOF or bad data. */
static int holder_read(int fd)
{
	char *buf = malloc(HOLDER_MAX);
	size_t len = 0;
	int rc = -1;
	if (!buf)
		return -1;
	for (;;) {
		/* "end\0" at a field's start ends the record. */
		if (len >= 4 && !memcmp(buf + len - 4, "end", 4) && (len == 4 || buf[len - 5] == '\0'))
			break;
		if (len == HOLDER_MAX)
			goto out;
		ssize_t n = read(fd, buf + len, HOLDER_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		len += (size_t)n;
	}
	for (size_t off = 0; off < len;) {
		const char *f = buf + off;
		size_t fl = strlen(f);
		if (!strncmp(f, "pid=", 4))
			step.holder = (pid_t)strtol(f + 4, NULL, 10);
		else if (!strncmp(f, "workdir=", 8))
			step.workdir = strdup(f + 8);
		else if (!strncmp(f, "caps=", 5)) {
			step.caps = strtoull(f + 5, NULL, 16);
			step.have_caps = true;
		} else if (!strncmp(f, "env=", 4)) {
			char **v = realloc(step.env, (step.nenv + 1) * sizeof *v);
			if (!v)
				goto out;
			step.env = v;
			step.env[step.nenv] = strdup(f + 4);
			if (step.env[step.nenv])
				step.nenv++;
		}
		off += fl + 1;
	}
	rc = step.holder > 0 && step.workdir && step.have_caps ? 0 : -1;
out:
	free(buf);
	return rc;
}

/* qimg failed: its last line of stderr is the message ("qimg: run: ..."). */
static void holder_error(int errfd)
{
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof buf - 1 &&
	       ((n = read(errfd, buf + len, sizeof buf - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	char *nl = strrchr(buf, '\n');
	char *last = nl ? nl + 1 : buf;
	/* `run --pull` ends with "pull IMG failed ...; see the message above": the pull's own line says why. */
	if (nl && strstr(last, "see the message above")) {
		*nl = '\0';
		char *prev = strrchr(buf, '\n');
		last = prev ? prev + 1 : buf;
	}
	if (!strncmp(last, "qimg: ", 6))
		last += 6; /* the task prints "qimg: IMAGE: " before it */
	if (*last)
		step_fail("%s", last);
	else
		step_fail("qimg run %s failed without a message", opt.image);
}

static void child_exec(struct argv *a, char **envp, int outfd, int errfd, gid_t *gids, int ngids)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(125);
	/* slurmstepd dropped only its effective ids for user_init: become the user for good. */
	if (geteuid() != 0 && seteuid(0) < 0)
		_exit(125);
	if (step.uid != 0 || step.gid != 0) {
		if (setgroups((size_t)ngids, gids) < 0 || setresgid(step.gid, step.gid, step.gid) < 0 ||
		    setresuid(step.uid, step.uid, step.uid) < 0)
			_exit(125);
	}
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)signal(s, SIG_DFL);
	execve(a->v[0], a->v, envp);
	dprintf(2, "qimg: exec %s: %s\n", a->v[0], strerror(errno));
	_exit(127);
}

static void holder_start(spank_t sp)
{
	struct argv a = {0};
	char **envp = NULL;
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	gid_t *gids = NULL;
	int ngids = 0;
	if (opt.entrypoint == 1) {
		step_fail(
		    "--container-entrypoint: not supported by qimg's plugin yet (the image's Entrypoint is not run)");
		return;
	}
	if (spank_get_item(sp, S_JOB_UID, &step.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &step.gid) != ESPANK_SUCCESS) {
		step_fail("spank_qimg: cannot get the job's uid and gid");
		return;
	}
	(void)spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &gids, &ngids);
	if (holder_argv(sp, &a) < 0)
		goto out;
	envp = holder_env(sp);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		step_fail("spank_qimg: pipe: %s", strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		step_fail("spank_qimg: fork for qimg: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(&a, envp, out[1], err[1], gids, ngids);
	step.qimg = pid;
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;
	if (holder_read(out[0]) == 0) {
		step.errfd = err[0];
		err[0] = -1;
	} else {
		holder_error(err[0]);
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		step.qimg = -1;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	argv_free(&a);
	for (char **p = envp; p && *p; p++)
		free(*p);
	free(envp);
}

int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || !step.active || step.error[0])
		return 0;
	double t0 = now_ms();
	holder_start(sp);
	slurm_debug("spank_qimg: %s: container %s in %.1f ms", opt.image, step.error[0] ? "failed" : "ready",
	            now_ms() - t0);
	return 0; /* errors are told by each task (on srun's stderr) and fail it */
}

/* ---- joining: each task, as the user, just before slurmstepd execs its command ---- */

static int write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, strlen(data));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(data) ? 0 : -1;
}

/* In the holder's user namespace we are root (the map's 0 is our uid). Without --container-remap-root, a
   namespace of our own below it maps our uid and gid back, as pyxis does: the user's own ids inside. */
static int own_ids_write(uid_t uid, gid_t gid, char *map, size_t mapsize, char *msg, size_t size);
static int own_ids(uid_t uid, gid_t gid, char *msg, size_t size)
{
	char map[64];
	/* The task was made non-dumpable when slurmstepd changed its ids, which makes its /proc/self files root's:
	   writing our own maps needs them to be ours. Dumpable only for these writes; the exec that follows makes
	   the command dumpable anyway (a plain binary run by the user), with this copy of slurmstepd's memory gone. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) {
		snprintf(msg, size, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		return -1;
	}
	int rc = own_ids_write(uid, gid, map, sizeof map, msg, size);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return rc;
}

static int own_ids_write(uid_t uid, gid_t gid, char *map, size_t mapsize, char *msg, size_t size)
{
	if (unshare(CLONE_NEWUSER) < 0) {
		snprintf(msg, size, "unshare(CLONE_NEWUSER): %s", strerror(errno));
		return -1;
	}
	snprintf(map, mapsize, "%u 0 1\n", (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) < 0) {
		snprintf(msg, size, "write uid_map: %s", strerror(errno));
		return -1;
	}
	if (write_file("/proc/self/setgroups", "deny") < 0) {
		snprintf(msg, size, "write setgroups: %s", strerror(errno));
		return -1;
	}
	snprintf(map, mapsize, "%u 0 1\n", (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0) {
		snprintf(msg, size, "write gid_map: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The holder's namespaces, opened by the task while it is still root (slurm_spank_task_init_privileged): the
   holder is not dumpable (its memory is qimg's, which nothing in the container may ptrace), so the user may not
   open its /proc/PID/ns files. */
static int ns_user = -1, ns_mnt = -1, ns_errno;

/* The holder's parent pid (field 4 of /proc/PID/stat), -1 when unreadable. */
static pid_t holder_parent(void)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)step.holder);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	long ppid;
	char state;
	if (!p || sscanf(p + 1, " %c %ld", &state, &ppid) != 2)
		return -1;
	return (pid_t)ppid;
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || !step.active || step.error[0])
		return 0;
	char path[64];
	/* The pid came from a process the user runs: open nothing unless it is our qimg's child (qimg is ours and
	   not yet reaped, so its pid and its children's parent cannot be anybody else's). */
	if (holder_parent() != step.qimg) {
		ns_errno = ESRCH;
		return 0;
	}
	snprintf(path, sizeof path, "/proc/%ld/ns/user", (long)step.holder);
	ns_user = open(path, O_RDONLY | O_CLOEXEC);
	if (ns_user < 0)
		ns_errno = errno;
	snprintf(path, sizeof path, "/proc/%ld/ns/mnt", (long)step.holder);
	ns_mnt = open(path, O_RDONLY | O_CLOEXEC);
	if (ns_mnt < 0)
		ns_errno = errno;
	return 0;
}

/* uid 0 inside gets what a `qimg run` command gets: the bounding set is cut to the holder's set, so the command's
   capabilities after exec (all of the bounding set, as uid 0) are docker's default ones. */
static int caps_bound(char *msg, size_t size)
{
	for (int cap = 0; cap < 64; cap++) {
		if (step.caps & (UINT64_C(1) << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			snprintf(msg, size, "drop capability %d from the bounding set: %s", cap, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int join(char *msg, size_t size)
{
	int userfd = ns_user, mntfd = ns_mnt;
	errno = ns_errno;
	int rc = -1;
	bool rootless = getuid() != 0;
	bool remap = opt.remap_root == UNSET ? cfg.remap_root : opt.remap_root;
	if (userfd < 0 || mntfd < 0)
		snprintf(msg, size, "the step's container (pid %ld) is gone: %s", (long)step.holder, strerror(errno));
	else if (rootless && setns(userfd, CLONE_NEWUSER) < 0)
		snprintf(msg, size, "join the container's user namespace: %s", strerror(errno));
	else if (setns(mntfd, CLONE_NEWNS) < 0)
		snprintf(msg, size, "join the container's mount namespace: %s", strerror(errno));
	else if (rootless && !remap && own_ids(step.uid, step.gid, msg, size) < 0)
		;
	else if ((!rootless || remap) && caps_bound(msg, size) < 0)
		;
	else if (chdir(step.workdir) < 0)
		snprintf(msg, size, "chdir to the working directory %s: %s", step.workdir, strerror(errno));
	else
		rc = 0;
	if (userfd >= 0)
		close(userfd);
	if (mntfd >= 0)
		close(mntfd);
	ns_user = ns_mnt = -1;
	return rc;
}

/* --container-env=A,B: these names keep the job's value. */
static bool env_kept(const char *kv)
{
	if (!opt.env)
		return false;
	size_t kl = strcspn(kv, "=");
	for (const char *p = opt.env; *p;) {
		size_t l = strcspn(p, ",");
		if (l == kl && !strncmp(p, kv, kl))
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

static int env_apply(spank_t sp, char *msg, size_t size)
{
	for (size_t i = 0; i < step.nenv; i++) {
		const char *kv = step.env[i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv || env_kept(kv))
			continue;
		char key[256];
		if ((size_t)(eq - kv) >= sizeof key)
			continue;
		memcpy(key, kv, (size_t)(eq - kv));
		key[eq - kv] = '\0';
		if (spank_setenv(sp, key, eq + 1, 1) != ESPANK_SUCCESS) {
			snprintf(msg, size, "set %s", key);
			return -1;
		}
	}
	return 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || !step.active)
		return 0;
	char msg[512];
	if (step.error[0]) {
		int local = 0;
		/* One line per node (on its first task), not one per task. */
		if (spank_get_item(sp, S_TASK_ID, &local) != ESPANK_SUCCESS || local == 0) {
			fprintf(stderr, "qimg: %s: %s\n", opt.image, step.error);
			fflush(stderr);
		}
		return -1;
	}
	if (join(msg, sizeof msg) < 0 || env_apply(sp, msg, sizeof msg) < 0) {
		fprintf(stderr, "qimg: %s: %s\n", opt.image, msg);
		fflush(stderr);
		return -1;
	}
	return 0;
}

/* ---- the step's end (slurmstepd, root) ---- */

static void holder_stop(void)
{
	if (step.qimg <= 0)
		return;
	/* A pidfd turns readable when qimg exits: no polling interval between its exit and ours. */
	int pidfd = (int)syscall(SYS_pidfd_open, step.qimg, 0);
	(void)kill(step.qimg, SIGTERM);
	double t0 = now_ms();
	for (;;) {
		int st;
		pid_t r = waitpid(step.qimg, &st, WNOHANG);
		if (r == step.qimg || (r < 0 && errno == ECHILD))
			break; /* gone (slurmstepd's own wait may have reaped it) */
		double left = STOP_WAIT_MS - (now_ms() - t0);
		if (left <= 0) {
			/* The holder dies with qimg (PR_SET_PDEATHSIG). */
			(void)kill(step.qimg, SIGKILL);
			while (waitpid(step.qimg, &st, 0) < 0 && errno == EINTR)
				;
			break;
		}
		struct pollfd p = {pidfd, POLLIN, 0};
		(void)poll(pidfd >= 0 ? &p : NULL, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? (int)left + 1 : 1);
	}
	if (pidfd >= 0)
		close(pidfd);
	step.qimg = -1;
	if (step.errfd >= 0)
		close(step.errfd);
	step.errfd = -1;
}

/* ---- the job's end (slurmd's epilog, root, once per node): remove the job's --container-name containers ---- */

#define KEEP_PREFIX_MAX 32

/* As the user, in a child: `qimg [--store S] rm slurm-<jobid>-*` for what the store's runs/ holds. */
static void epilog_child(const struct passwd *pw, const char *store, const char *prefix)
{
	char runs[PATH_MAX + 64], home[PATH_MAX + 32];
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		_exit(125);
	snprintf(home, sizeof home, "HOME=%s", pw->pw_dir);
	if (putenv(home) != 0 || unsetenv("QIMG_STORE") < 0 || unsetenv("XDG_DATA_HOME") < 0)
		_exit(125);
	if (store)
		snprintf(runs, sizeof runs, "%s/runs", store);
	else
		snprintf(runs, sizeof runs, "%s/.local/share/qimg/runs", pw->pw_dir);
	DIR *d = opendir(runs);
	if (!d)
		_exit(errno == ENOENT ? 0 : 1);
	struct argv a = {0};
	argv_push(&a, cfg.qimg ? cfg.qimg : QIMG_BINDIR "/qimg");
	if (store) {
		argv_push(&a, "--store");
		argv_push(&a, store);
	}
	argv_push(&a, "-q");
	argv_push(&a, "rm");
	size_t base = a.n;
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			argv_push(&a, e->d_name);
	closedir(d);
	if (a.n == base)
		_exit(0);
	execv(a.v[0], a.v);
	_exit(127);
}

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	if (spank_context() != S_CTX_JOB_SCRIPT || config_parse(ac, av) < 0 || cfg.scope_global)
		return 0;
	uid_t uid;
	uint32_t jobid;
	if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS)
		return 0;
	struct passwd pwbuf, *pw = NULL;
	char buf[4096], prefix[KEEP_PREFIX_MAX], store[PATH_MAX];
	if (getpwuid_r(uid, &pwbuf, buf, sizeof buf, &pw) != 0 || !pw) {
		slurm_error("spank_qimg: epilog of job %u: no passwd entry for uid %u", (unsigned)jobid, (unsigned)uid);
		return 0;
	}
	snprintf(prefix, sizeof prefix, "slurm-%u-", (unsigned)jobid);
	const char *node = getenv("SLURMD_NODENAME");
	if (cfg.store && store_expand(cfg.store, pw->pw_name, uid, node ? node : "", store, sizeof store) < 0) {
		slurm_error("spank_qimg: epilog of job %u: %s", (unsigned)jobid, step.error);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		slurm_error("spank_qimg: epilog of job %u: fork: %s", (unsigned)jobid, strerror(errno));
		return 0;
	}
	if (pid == 0)
		epilog_child(pw, cfg.store ? store : NULL, prefix);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		slurm_error("spank_qimg: epilog of job %u: removing its named containers failed (status %d)",
		            (unsigned)jobid, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}

/* slurmstepd, as each task is reaped: once the node's last task is gone, end the container ourselves, before
   Slurm's process tracking kills what is left of the step (SIGKILL would leave qimg no time to release its run
   record and lease). */
static uint32_t tasks_exited;

int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	uint32_t ntasks = 0;
	if (spank_context() != S_CTX_REMOTE || step.qimg <= 0)
		return 0;
	if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) == ESPANK_SUCCESS && ++tasks_exited >= ntasks) {
		double t0 = now_ms();
		holder_stop();
		slurm_debug("spank_qimg: container stopped after the last task in %.1f ms", now_ms() - t0);
	}
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	if (spank_context() == S_CTX_REMOTE && step.qimg > 0) {
		double t0 = now_ms();
		holder_stop();
		slurm_debug("spank_qimg: container stopped in %.1f ms", now_ms() - t0);
	}
	return 0;
}
