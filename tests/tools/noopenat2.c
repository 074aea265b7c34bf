/* noopenat2 CMD [ARG...]: run CMD with openat2 failing with ENOSYS (built by e2e tests that need it). */
#include <stdio.h>
#include <unistd.h>

#include "../unit/noopenat2.h"

int main(int argc, char **argv)
{
	if (argc < 2 || no_openat2() < 0) {
		perror("noopenat2");
		return 126;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
