/* `qimg-cdi NAME...` and `qimg-pull cdi-resolve NAME...` (internal, for `qimg run --device`): the CDI edits plan of
   the named devices on stdout, from the spec directories ($QIMG_CDI_SPEC_DIRS or /etc/cdi:/var/run/cdi). */
#include <stdio.h>
#include <string.h>

#include "../cdi/cdi.h"
#include "cmd.h"

int cmd_cdi_resolve(struct gopts *g, int argc, char **argv)
{
	(void)g;
	int i = 1;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		cmd_error("cdi-resolve: no device names");
		return EXIT_USAGE;
	}
	struct qerr err = {0};
	struct cdi_plan p;
	if (cdi_resolve(NULL, argv + i, (size_t)(argc - i), &p, &err) < 0)
		return cmd_fail("run", &err, EXIT_QIMG);
	autofree char *text = cdi_plan_format(&p);
	cdi_plan_free(&p);
	if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
		cmd_error("cdi-resolve: write the plan: stdout");
		return EXIT_QIMG;
	}
	return 0;
}
