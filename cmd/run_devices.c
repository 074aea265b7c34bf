/* `qimg run --device/--gpus`: plain /dev paths become device binds here; CDI names are resolved by
   `qimg-pull cdi-resolve` (the run path parses no JSON and loads no library), whose plan is read from its stdout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cdi/cdi.h"
#include "cmd.h"

#define PLAN_MAX (16u << 20)

/* Read everything from fd (at most PLAN_MAX). */
static char *read_all(int fd, struct qerr *err)
{
	struct buf b = {0};
	char chunk[16384];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			qerr_sys(err, "read the CDI plan");
			buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > PLAN_MAX) {
			qerr_set(err, "the CDI plan is over %u bytes", PLAN_MAX);
			buf_free(&b);
			return NULL;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	buf_append(&b, "", 0);
	return b.p;
}

/* `qimg-cdi -- NAME...` (or, where it is not installed, `qimg-pull cdi-resolve -- NAME...`): its stdout is the
   plan, its stderr ours (it names the spec or device). */
static int resolve_helper(const struct strv *names, struct cdi_plan *p, struct qerr *err)
{
	struct qerr ignore;
	autofree char *helper = cmd_helper_find_named("qimg-cdi", "QIMG_CDI_HELPER", &ignore);
	bool lean = helper != NULL;
	if (!lean && !(helper = cmd_helper_find(err)))
		return -1;
	const char **argv = xcalloc(names->n + 4, sizeof *argv);
	size_t n = 0;
	argv[n++] = helper;
	if (!lean)
		argv[n++] = "cdi-resolve";
	argv[n++] = "--";
	for (size_t i = 0; i < names->n; i++)
		argv[n++] = names->v[i];
	log_debug("run: resolving CDI devices with %s", helper);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(argv);
		return qerr_sys(err, "pipe");
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(EXIT_QIMG);
		execv(helper, (char *const *)argv);
		fprintf(stderr, "qimg: run: exec %s: %s\n", helper, strerror(errno));
		_exit(EXIT_QIMG);
	}
	free(argv);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return qerr_sys(err, "fork for %s", helper);
	}
	struct qerr rerr = {0};
	autofree char *text = read_all(fds[0], &rerr);
	close(fds[0]);
	int wst;
	while (waitpid(pid, &wst, 0) < 0)
		if (errno != EINTR)
			return qerr_sys(err, "wait for %s", helper);
	if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
		/* The helper said why on stderr. */
		qerr_set(err, "resolving the CDI devices failed (see above)");
		err->exit_status = EXIT_QIMG;
		return -1;
	}
	if (!text) {
		*err = rerr;
		return -1;
	}
	return cdi_plan_parse(text, p, err);
}

#define DEVICE_DIR_DEPTH 8

/* --device /dev/DIR[:/dev/CTR]: every device node below DIR, as docker adds them (symlinks are not followed). */
static int device_dir(const char *spec, const struct cdi_dev *d, int depth, struct cdi_plan *out, struct qerr *err)
{
	DIR *dir = opendir(d->host);
	if (!dir)
		return qerr_sys(err, "--device %s: %s", spec, d->host);
	struct dirent *e;
	int rc = 0;
	errno = 0;
	while (rc == 0 && (e = readdir(dir)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct cdi_dev sub = *d;
		struct stat sb;
		sub.host = xasprintf("%s/%s", d->host, e->d_name);
		sub.ctr = xasprintf("%s/%s", d->ctr, e->d_name);
		if (lstat(sub.host, &sb) == 0) {
			if (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode))
				cdi_plan_add_dev(out, &sub);
			else if (S_ISDIR(sb.st_mode) && depth < DEVICE_DIR_DEPTH)
				rc = device_dir(spec, &sub, depth + 1, out, err);
		}
		free(sub.host);
		free(sub.ctr);
		errno = 0;
	}
	if (rc == 0 && errno)
		rc = qerr_sys(err, "--device %s: read %s", spec, d->host);
	closedir(dir);
	return rc;
}

/* --device /dev/HOST[:/dev/CTR][:PERMS]: a device node, or a directory of them. */
static int plain_device(const char *spec, struct cdi_plan *out, struct qerr *err)
{
	struct cdi_dev dev;
	struct stat sb;
	int rc = 0;
	if (cdi_plain_device_parse(spec, &dev, err) < 0)
		return -1;
	if (stat(dev.host, &sb) < 0)
		rc = qerr_sys(err, "--device %s: %s", spec, dev.host);
	else if (S_ISDIR(sb.st_mode))
		rc = device_dir(spec, &dev, 0, out, err);
	else if (!S_ISCHR(sb.st_mode) && !S_ISBLK(sb.st_mode))
		rc = qerr_set(err, "--device %s: %s is not a device node or a directory of them", spec, dev.host);
	else
		cdi_plan_add_dev(out, &dev);
	free(dev.host);
	free(dev.ctr);
	return rc;
}

int cmd_run_devices(const struct strv *devices, const struct strv *gpus, struct cdi_plan *p, struct qerr *err)
{
	struct strv names = {0};
	struct cdi_plan plain = {0};
	int rc = 0;
	memset(p, 0, sizeof *p);
	for (size_t i = 0; rc == 0 && i < gpus->n; i++)
		rc = cdi_gpus_names(gpus->v[i], &names, err);
	for (size_t i = 0; rc == 0 && i < devices->n; i++) {
		const char *d = devices->v[i];
		if (d[0] != '/') {
			autofree char *kind = NULL, *name = NULL;
			rc = cdi_name_parse(d, &kind, &name, err);
			if (rc == 0)
				strv_push(&names, d);
			continue;
		}
		rc = plain_device(d, &plain, err);
	}
	if (rc == 0 && names.n)
		rc = resolve_helper(&names, p, err);
	if (rc == 0) {
		cdi_plan_append(p, &plain);
		cdi_plan_normalize(p);
	} else {
		cdi_plan_free(p);
	}
	cdi_plan_free(&plain);
	strv_free(&names);
	return rc;
}
