/* qimg-cdi: `qimg run --device`'s CDI resolver on its own (jansson and libyaml only, no libcurl/OpenSSL/libarchive
   to load: it starts in about a millisecond where qimg-pull takes ~9). `qimg-cdi [--] NAME...` prints the edits
   plan; `qimg-pull cdi-resolve NAME...` does the same and is the fallback when qimg-cdi is not installed. */
#include "cmd.h"

int main(int argc, char **argv)
{
	struct gopts g = {.argv0 = argv[0]};
	return cmd_cdi_resolve(&g, argc, argv);
}
