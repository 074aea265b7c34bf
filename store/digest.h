/* Streaming sha256 digests ("sha256:<hex>") with OpenSSL EVP; heavy (libcrypto), used by pull/ and overlay/. */
#ifndef QIMG_DIGEST_H
#define QIMG_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

struct digester; /* an in-progress sha256 */

/* A fresh sha256 state (aborts on OOM like xmalloc). Free with digester_free. */
struct digester *digester_new(void);
void digester_free(struct digester *d);
/* Start over (as if freshly created). */
void digester_reset(struct digester *d);
void digester_update(struct digester *d, const void *data, size_t len);
/* Write "sha256:<64 hex>" into out (DIGEST_LEN + 1 bytes). The state is reset afterwards. */
void digester_final(struct digester *d, char out[DIGEST_LEN + 1]);

/* Digest of a buffer into out. */
void digest_buf(const void *data, size_t len, char out[DIGEST_LEN + 1]);
/* Feed the first len bytes of fd (read with pread from offset 0) into d; -1 with err on a read error or a
   short file. */
int digest_fd_prefix(struct digester *d, int fd, int64_t len, struct qerr *err);
/* Digest of everything fd has from its current offset to its end into out; -1 with err on a read error. */
int digest_fd(int fd, char out[DIGEST_LEN + 1], struct qerr *err);
/* True when data hashes to digest (which must be valid). */
bool digest_matches(const void *data, size_t len, const char *digest);

#endif
