/* The caller's id mapping: 0 -> own uid/gid, 1..N -> the first /etc/subuid and /etc/subgid range. */
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBID_FILE_MAX (4u << 20)

static bool parse_u32(const char *s, uint32_t *out)
{
	if (!*s)
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX || *s == '-')
		return false;
	*out = (uint32_t)v;
	return true;
}

int userns_subid_find(const char *text, const char *name, uint32_t id, uint32_t *start, uint32_t *count)
{
	char idstr[16];
	snprintf(idstr, sizeof idstr, "%u", id);
	autofree char *copy = xstrdup(text);
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[3];
		int nf = 0;
		char *fsave = NULL;
		for (char *t = strtok_r(line, ":", &fsave); t && nf < 3; t = strtok_r(NULL, ":", &fsave))
			f[nf++] = t;
		if (nf != 3 || line[0] == '#')
			continue;
		if (strcmp(f[0], idstr) != 0 && (!name || strcmp(f[0], name) != 0))
			continue;
		uint32_t s, c;
		if (!parse_u32(f[1], &s) || !parse_u32(f[2], &c) || c == 0)
			continue;
		*start = s;
		*count = c;
		return 0;
	}
	return -1;
}

static int subid_range(const char *file, const char *name, uint32_t id, struct idmap_range *r, struct qerr *err)
{
	struct qerr rerr;
	autofree char *text = read_file_at(AT_FDCWD, file, SUBID_FILE_MAX, NULL, &rerr);
	if (!text && rerr.code != ENOENT) {
		*err = rerr;
		return -1;
	}
	if (!text || userns_subid_find(text, name, id, &r->outside, &r->count) < 0) {
		qerr_set(err,
		         "no %s entry for user %s%s%u%s: add one, e.g. `usermod --add-subuids 100000-165535 "
		         "--add-subgids 100000-165535 %s`",
		         file, name ? name : "", name ? " (uid " : "uid ", id, name ? ")" : "", name ? name : "USER");
		err->code = ENOENT; /* no range: the single-id mode's case (userns/mode.c) */
		return -1;
	}
	r->inside = 1;
	return 0;
}

int userns_idmap_get(struct idmap *m, struct qerr *err)
{
	memset(m, 0, sizeof *m);
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (uid == 0) {
		m->uid[0] = (struct idmap_range){0, 0, UINT32_MAX};
		m->gid[0] = m->uid[0];
		m->nuid = m->ngid = 1;
		return 0;
	}
	autofree char *namecopy = NULL;
	(void)passwd_entry(uid, &namecopy, NULL);
	m->uid[0] = (struct idmap_range){0, uid, 1};
	m->gid[0] = (struct idmap_range){0, gid, 1};
	if (subid_range("/etc/subuid", namecopy, uid, &m->uid[1], err) < 0 ||
	    subid_range("/etc/subgid", namecopy, uid, &m->gid[1], err) < 0)
		return -1;
	m->nuid = m->ngid = 2;
	return 0;
}

static void ranges_put(struct buf *b, char kind, const struct idmap_range *r, int n)
{
	buf_printf(b, "%c", kind);
	for (int i = 0; i < n; i++)
		buf_printf(b, "%s%u:%u:%u", i ? "," : "", r[i].inside, r[i].outside, r[i].count);
}

char *userns_idmap_string(const struct idmap *m)
{
	struct buf b = {0};
	ranges_put(&b, 'u', m->uid, m->nuid);
	buf_printf(&b, " ");
	ranges_put(&b, 'g', m->gid, m->ngid);
	return b.p;
}
