/* Pull progress on a terminal: one line per blob (bytes done/total), redrawn in place like podman's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

#define PROGRESS_FD       2
#define PROGRESS_INTERVAL 0.1 /* seconds between redraws */
#define BAR_WIDTH         24

struct progress_line {
	char *text; /* "Copying blob 0123456789ab" or a note */
	bool is_note;
	int64_t done, total;
	const char *state; /* final word, or NULL while in flight */
};

struct progress {
	bool on;
	struct progress_line *v;
	size_t n, cap;
	size_t drawn;  /* lines on screen from the last draw */
	size_t frozen; /* leading lines printed in their final form: never redrawn (may scroll away) */
	double last;
};

struct progress *progress_new(bool on)
{
	struct progress *p = xcalloc(1, sizeof(*p));

	p->on = on;
	return p;
}

void progress_free(struct progress *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].text);
	free(p->v);
	free(p);
}

static size_t progress_push(struct progress *p, char *text)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	memset(&p->v[p->n], 0, sizeof(p->v[p->n]));
	p->v[p->n].text = text;
	return p->n++;
}

size_t progress_add(struct progress *p, const char *what, const char *digest, int64_t total)
{
	const char *hex = strchr(digest, ':') ? strchr(digest, ':') + 1 : digest;
	size_t id = progress_push(p, xasprintf("Copying %s %.12s", what, hex));

	p->v[id].total = total;
	return id;
}

void progress_bytes(struct progress *p, size_t id, int64_t done)
{
	if (id < p->n)
		p->v[id].done = done;
}

void progress_state(struct progress *p, size_t id, const char *s)
{
	if (id < p->n)
		p->v[id].state = s;
}

void progress_note(struct progress *p, const char *fmt, ...)
{
	va_list ap;
	char *text;
	size_t id;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = xstrdup(fmt);
	va_end(ap);
	id = progress_push(p, text);
	p->v[id].is_note = true;
}

static void human(char *out, size_t n, int64_t bytes)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f%s" : "%.0f%s", v, unit[u]);
}

static void line_render(struct buf *b, const struct progress_line *l)
{
	char done[32], total[32], bar[BAR_WIDTH + 1];
	int fill;

	buf_printf(b, "\r\033[K%s", l->text);
	if (l->is_note) {
		buf_append(b, "\n", 1);
		return;
	}
	if (l->state) {
		buf_printf(b, " %s\n", l->state);
		return;
	}
	human(done, sizeof(done), l->done);
	human(total, sizeof(total), l->total);
	fill = l->total > 0 ? (int)(BAR_WIDTH * (double)l->done / (double)l->total) : 0;
	fill = fill > BAR_WIDTH ? BAR_WIDTH : fill;
	memset(bar, '=', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(BAR_WIDTH - fill));
	if (fill > 0 && fill < BAR_WIDTH)
		bar[fill - 1] = '>';
	bar[BAR_WIDTH] = '\0';
	buf_printf(b, " [%s] %s / %s\n", bar, done, total);
}

void progress_draw(struct progress *p, bool force)
{
	struct buf b = {0};
	double now = now_mono();

	if (!p->on || (!force && now - p->last < PROGRESS_INTERVAL))
		return;
	p->last = now;
	if (p->drawn > p->frozen)
		buf_printf(&b, "\033[%zuA", p->drawn - p->frozen);
	for (size_t i = p->frozen; i < p->n; i++)
		line_render(&b, &p->v[i]);
	p->drawn = p->n;
	while (p->frozen < p->n && (p->v[p->frozen].is_note || p->v[p->frozen].state))
		p->frozen++;
	if (b.len)
		(void)write_all(PROGRESS_FD, b.p, b.len); /* display only: a failed write changes nothing */
	buf_free(&b);
}
