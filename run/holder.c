/* `qimg run --slurm-holder IMAGE`: the container of one Slurm job step on one node (slurm/spank_qimg.c). PID 1's
   setup steps run as for any run, but in the host's pid namespace (Slurm must see, account, signal and kill the
   tasks) and with the host's /proc bound in; then instead of forking a command it tells the plugin, on stdout,
   what the tasks need to join it, and waits. Each task setns()es into our user and mount namespaces
   (/proc/PID/ns/{user,mnt}); we stay alive only so that those namespaces do, until the plugin's TERM (forwarded
   by qimg) at the step's end, or qimg's death (PR_SET_PDEATHSIG). */
#include "run_int.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/mountapi.h"

/* The record the plugin reads: NUL-terminated fields "pid=N", "workdir=DIR", "caps=HEX", "env=K=V"..., "end". */
static void holder_record(struct run_init *in, const char *workdir, struct buf *b)
{
	const struct image_spec *spec = in->o->spec;
	bool have_path = false;
	buf_printf(b, "pid=%ld%c", (long)getpid(), '\0');
	buf_printf(b, "workdir=%s%c", workdir, '\0');
	/* The capability bounding set a `qimg run` command gets (docker's default set): the plugin gives it to tasks
	   that are uid 0 inside (--container-remap-root, or root's jobs). */
	uint64_t caps = run_caps_effective_set(in->o->cap_add, in->o->cap_drop) & run_caps_known();
	buf_printf(b, "caps=%llx%c", (unsigned long long)caps, '\0');
	for (size_t i = 0; i < spec->env.n; i++) {
		if (!strncmp(spec->env.v[i], "PATH=", 5))
			have_path = true;
		buf_printf(b, "env=%s%c", spec->env.v[i], '\0');
	}
	if (!have_path)
		buf_printf(b, "env=PATH=%s%c", RUN_DEFAULT_PATH, '\0');
	buf_printf(b, "end%c", '\0');
}

void run_holder_main(struct run_init *in)
{
	struct qerr err = {0};
	const char *w = in->o->workdir ? in->o->workdir : in->o->spec->workdir;
	if (!w || !*w)
		w = "/";
	autofree char *workdir = *w == '/' ? xstrdup(w) : xasprintf("/%s", w);
	if (rootfs_mkdir_p(workdir, &err) < 0) {
		qerr_wrap(&err, "working directory %s: ", workdir);
		struct run_msg m = {.kind = RUN_MSG_ERROR, .status = EXIT_RUN_QIMG};
		snprintf(m.text, sizeof m.text, "%.*s", (int)sizeof m.text - 1, err.msg);
		(void)!write(in->msg_fd, &m, sizeof m);
		_exit(EXIT_RUN_QIMG);
	}
	struct buf b = {0};
	holder_record(in, workdir, &b);
	int wrc = write_all(STDOUT_FILENO, b.p, b.len);
	buf_free(&b);
	if (wrc < 0)
		_exit(EXIT_RUN_QIMG);
	/* Nothing of qimg's or the plugin's stays open here but the message pipe (our exit reaches qimg anyway). */
	if (in->msg_fd > 0)
		(void)close_range(0, (unsigned)in->msg_fd - 1, 0);
	(void)close_range((unsigned)in->msg_fd + 1, ~0U, 0);
	/* The forwarded signals are blocked since qimg blocked them before the clone. The exit message lets qimg
	   end (release its run record and lease) without waiting for the kernel to tear our namespaces down, as for
	   any run without --keep. */
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&in->fwd, &si) > 0) {
			struct run_msg m = {.kind = RUN_MSG_EXIT, .status = 0};
			(void)!write(in->msg_fd, &m, sizeof m);
			_exit(0);
		}
	}
}
