/* Image references: parse and normalise like docker/podman ("ubuntu" -> docker.io/library/ubuntu:latest). */
#include "pull.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_TOTAL 255
#define TAG_MAX        128

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+ */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !is_lower_alnum(s[j]))
			j++;
		size_t len = j - i;
		bool ok = (len == 1 && (s[i] == '_' || s[i] == '.')) || (len == 2 && s[i] == '_' && s[i + 1] == '_');
		if (!ok) {
			ok = true;
			for (size_t k = i; k < j; k++)
				ok = ok && s[k] == '-';
		}
		if (!ok)
			return false;
		i = j;
	}
	return true;
}

/* domain := label ('.' label)* [':' port], label := [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?; or an [IPv6] literal. */
static bool domain_valid(const char *s, size_t n)
{
	size_t host_end = n;
	const char *colon = NULL;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return false;
		host_end = (size_t)(close - s) + 1;
		if (host_end < n && s[host_end] != ':')
			return false;
		colon = host_end < n ? s + host_end : NULL;
	} else {
		colon = memchr(s, ':', n);
		if (colon)
			host_end = (size_t)(colon - s);
		size_t label = 0;
		for (size_t i = 0; i < host_end; i++) {
			char c = s[i];
			if (c == '.') {
				if (label == 0 || s[i - 1] == '-')
					return false;
				label = 0;
			} else if (isalnum((unsigned char)c) || (c == '-' && label > 0)) {
				label++;
			} else {
				return false;
			}
		}
		if (label == 0 || s[host_end - 1] == '-')
			return false;
	}
	if (colon) {
		size_t plen = n - (size_t)(colon - s) - 1;
		if (plen == 0 || plen > 5)
			return false;
		for (size_t i = 1; i <= plen; i++)
			if (!isdigit((unsigned char)colon[i]))
				return false;
	}
	return true;
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > TAG_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		bool word = isalnum((unsigned char)c) || c == '_';
		if (!(word || (i > 0 && (c == '.' || c == '-'))))
			return false;
	}
	return true;
}

void ref_free(struct image_ref *ref)
{
	free(ref->domain);
	free(ref->path);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof *ref);
}

static int bad(struct image_ref *ref, struct qerr *err, const char *s, const char *why)
{
	ref_free(ref);
	return qerr_set(err, "invalid reference \"%s\": %s", s, why);
}

/* Does the first component name a registry host (docker's rule: has '.' or ':' or is "localhost")? */
static bool first_is_domain(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && !memcmp(s, "localhost", 9)) ||
	       (n > 0 && s[0] == '[');
}

int ref_parse(const char *s, struct image_ref *ref, struct qerr *err)
{
	memset(ref, 0, sizeof *ref);
	if (!s || !*s)
		return bad(ref, err, "", "empty");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return bad(ref, err, s, "contains whitespace or control characters");
	autofree char *work = xstrdup(s);
	char *at = strchr(work, '@');
	if (at) {
		*at = '\0';
		if (!store_digest_valid(at + 1))
			return bad(ref, err, s, "digest must be sha256: followed by 64 lowercase hex digits");
		ref->digest = xstrdup(at + 1);
	}
	/* A tag is after the last ':' that comes after the last '/'. */
	char *slash = strrchr(work, '/');
	char *colon = strrchr(slash ? slash : work, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return bad(ref, err, s, "invalid tag");
		ref->tag = xstrdup(colon + 1);
	}
	char *name = work;
	if (!*name)
		return bad(ref, err, s, "missing repository name");
	char *first_slash = strchr(name, '/');
	if (first_slash && first_is_domain(name, (size_t)(first_slash - name))) {
		if (!domain_valid(name, (size_t)(first_slash - name)))
			return bad(ref, err, s, "invalid registry host");
		ref->domain = xstrndup(name, (size_t)(first_slash - name));
		name = first_slash + 1;
	} else {
		ref->domain = xstrdup("docker.io");
	}
	if (!strcmp(ref->domain, "index.docker.io") || !strcmp(ref->domain, "registry-1.docker.io")) {
		free(ref->domain);
		ref->domain = xstrdup("docker.io");
	}
	for (char *c = name;;) {
		char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (!path_component_valid(c, n)) {
			for (size_t i = 0; i < n; i++)
				if (isupper((unsigned char)c[i]))
					return bad(ref, err, s, "repository name must be lowercase");
			return bad(ref, err, s, "invalid repository name component");
		}
		if (!end)
			break;
		c = end + 1;
	}
	if (!strcmp(ref->domain, "docker.io") && !strchr(name, '/'))
		ref->path = xasprintf("library/%s", name);
	else
		ref->path = xstrdup(name);
	if (strlen(ref->domain) + 1 + strlen(ref->path) > NAME_MAX_TOTAL)
		return bad(ref, err, s, "repository name longer than 255 characters");
	if (!ref->tag && !ref->digest)
		ref->tag = xstrdup("latest");
	return 0;
}

char *ref_name(const struct image_ref *ref)
{
	return xasprintf("%s/%s", ref->domain, ref->path);
}

char *ref_string(const struct image_ref *ref)
{
	return xasprintf("%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag ? ":" : "", ref->tag ? ref->tag : "",
	                 ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

const char *ref_endpoint(const struct image_ref *ref)
{
	return strcmp(ref->domain, "docker.io") ? ref->domain : "registry-1.docker.io";
}

const char *ref_key(const struct image_ref *ref)
{
	return ref->digest ? ref->digest : ref->tag;
}
