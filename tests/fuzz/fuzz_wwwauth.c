/* Fuzz target: WWW-Authenticate challenges (pull/auth.c wwwauth_parse). A Bearer result always has a realm;
   a failure always says why. */
#include "../../pull/internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_challenge c;
	struct qerr err = {0};
	if (size > 20000)
		return 0;
	autofree char *s = fuzz_cstr(data, size);
	if (wwwauth_parse(s, &c, &err) == 0) {
		if (c.scheme == AUTH_NONE || (c.scheme == AUTH_BEARER && (!c.realm || !*c.realm)))
			abort();
		auth_challenge_free(&c);
	} else if (!err.msg[0] || c.realm || c.service || c.scope) {
		abort();
	}
	return 0;
}
