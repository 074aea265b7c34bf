/* Shared bits of qimg's fuzz targets (tests/fuzz/fuzz_*.c): the libFuzzer entry point, a NUL-terminated copy
   of the input, a scratch store that disappears at exit. Built with clang -fsanitize=fuzzer (make fuzz) or
   with gcc and driver.c (make fuzz-regress, tests/e2e/security_fuzz_regress.sh). */
#ifndef QIMG_FUZZ_H
#define QIMG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (caller frees); bytes after an embedded NUL are invisible to C parsers anyway. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Split the input at the first `sep` byte: returns a NUL-terminated copy of the part before it; the part
   after it is left in place (rest, rest_len). */
static inline char *fuzz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **rest,
                               size_t *rest_len)
{
	const uint8_t *p = memchr(data, sep, size);
	size_t n = p ? (size_t)(p - data) : size;
	*rest = p ? p + 1 : data + size;
	*rest_len = p ? size - n - 1 : 0;
	return fuzz_cstr(data, n);
}

/* A scratch dir (on tmpfs when /dev/shm is there: stores syncfs) removed at exit; "" on failure. */
const char *fuzz_scratch(const char *what);
/* A store opened in fuzz_scratch(what)/store (aborts when it cannot be made). */
struct store *fuzz_store(const char *what);

#endif
