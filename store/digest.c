/* Streaming sha256 with OpenSSL EVP: the one place that computes content digests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "digest.h"

struct digester {
	EVP_MD_CTX *ctx;
};

static void digester_init(struct digester *d)
{
	if (EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "qimg: sha256 init failed\n");
		abort();
	}
}

struct digester *digester_new(void)
{
	struct digester *d = xcalloc(1, sizeof(*d));

	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx) {
		fprintf(stderr, "qimg: out of memory\n");
		abort();
	}
	digester_init(d);
	return d;
}

void digester_free(struct digester *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

void digester_reset(struct digester *d)
{
	digester_init(d);
}

void digester_update(struct digester *d, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(d->ctx, data, len) != 1) {
		fprintf(stderr, "qimg: sha256 update failed\n");
		abort();
	}
}

void digester_final(struct digester *d, char out[DIGEST_LEN + 1])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1 || n != DIGEST_HEX_LEN / 2) {
		fprintf(stderr, "qimg: sha256 final failed\n");
		abort();
	}
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < n; i++) {
		out[7 + 2 * i] = hexd[md[i] >> 4];
		out[7 + 2 * i + 1] = hexd[md[i] & 15];
	}
	out[DIGEST_LEN] = '\0';
	digester_init(d);
}

void digest_buf(const void *data, size_t len, char out[DIGEST_LEN + 1])
{
	struct digester *d = digester_new();

	digester_update(d, data, len);
	digester_final(d, out);
	digester_free(d);
}

int digest_fd_prefix(struct digester *d, int fd, int64_t len, struct qerr *err)
{
	enum { CHUNK = 1 << 20 };
	autofree char *b = xmalloc(CHUNK);
	int64_t off = 0;

	while (off < len) {
		size_t want = (size_t)(len - off < CHUNK ? len - off : CHUNK);
		ssize_t n = pread(fd, b, want, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qerr_sys(err, "read partial download");
		if (n == 0)
			return qerr_set(err, "read partial download: file shorter than %lld bytes", (long long)len);
		digester_update(d, b, (size_t)n);
		off += n;
	}
	return 0;
}

int digest_fd(int fd, char out[DIGEST_LEN + 1], struct qerr *err)
{
	enum { CHUNK = 1 << 20 };
	autofree char *b = xmalloc(CHUNK);
	struct digester *d = digester_new();
	for (;;) {
		ssize_t n = read(fd, b, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			digester_free(d);
			return qerr_sys(err, "read");
		}
		if (n == 0)
			break;
		digester_update(d, b, (size_t)n);
	}
	digester_final(d, out);
	digester_free(d);
	return 0;
}

bool digest_matches(const void *data, size_t len, const char *digest)
{
	char got[DIGEST_LEN + 1];

	if (!store_digest_valid(digest))
		return false;
	digest_buf(data, len, got);
	return strcmp(got, digest) == 0;
}
