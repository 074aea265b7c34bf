/* Fuzz target: credential files and token answers (pull/auth.c authfile_parse, token_parse). The first line
   of the input is "domain[/path]" to look up; the rest is the JSON. A token never holds a byte that would
   break the Authorization header. */
#include "../../pull/internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *json;
	size_t jlen;
	struct credentials c;
	struct qerr err = {0};
	char *token = NULL;
	if (size > AUTHFILE_MAX)
		return 0;
	autofree char *key = fuzz_split(data, size, '\n', &json, &jlen);
	char *slash = strchr(key, '/');
	if (slash)
		*slash++ = '\0';
	int rc = authfile_parse((const char *)json, jlen, key, slash, &c, &err);
	if (rc == 1 && (!c.user || !c.pass))
		abort();
	if (rc < 0 && !err.msg[0])
		abort();
	credentials_free(&c);
	if (token_parse((const char *)json, jlen, &token, &err) == 0) {
		for (const char *p = token; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				abort();
		free(token);
	}
	return 0;
}
