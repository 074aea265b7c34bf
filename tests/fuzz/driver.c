/* A libFuzzer-compatible main for compilers without libFuzzer (gcc): runs every file named on the command line
   (directories: every file in them, sorted) through LLVMFuzzerTestOneInput once. A crash or a sanitizer report
   ends the process; the last "running PATH" line on stderr names the input. Exit 0 when all ran. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path, int verbose)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "driver: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0, r;
	uint8_t *buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	int bad = ferror(f) || !buf;
	fclose(f);
	if (bad) {
		fprintf(stderr, "driver: read %s failed\n", path);
		free(buf);
		return -1;
	}
	fprintf(stderr, "running %s (%zu bytes)\n", path, n);
	/* An exact-size copy, so that reading past the input is caught by ASan as under libFuzzer. */
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	if (verbose)
		printf("ran %s\n", path);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, int verbose, size_t *count)
{
	struct stat sb;
	if (stat(path, &sb) < 0) {
		fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		(*count)++;
		return run_file(path, verbose);
	}
	DIR *d = opendir(path);
	if (!d)
		return -1;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		names[n] = malloc(strlen(path) + strlen(de->d_name) + 2);
		sprintf(names[n++], "%s/%s", path, de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (run_path(names[i], verbose, count) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int verbose = argc > 1 && !strcmp(argv[1], "-v");
	size_t count = 0;
	int rc = 0;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1 + verbose; i < argc; i++)
		if (run_path(argv[i], verbose, &count) < 0)
			rc = 1;
	printf("%zu inputs\n", count);
	return rc;
}
