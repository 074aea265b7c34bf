/* A tiny unit-test harness: one line per case ("ok NAME" / "FAIL NAME: why"), exit status = failures. */
#ifndef QIMG_T_H
#define QIMG_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;

#define T_OK(name, cond)                                                                       \
	do {                                                                                   \
		if (cond)                                                                      \
			printf("ok %s\n", name);                                               \
		else {                                                                         \
			printf("FAIL %s: %s:%d: %s\n", name, __FILE__, __LINE__, #cond);       \
			t_failures++;                                                          \
		}                                                                              \
	} while (0)

#define T_STREQ(name, want, got)                                                               \
	do {                                                                                   \
		const char *w_ = (want), *g_ = (got);                                          \
		if ((w_ == NULL && g_ == NULL) || (w_ && g_ && !strcmp(w_, g_)))               \
			printf("ok %s\n", name);                                               \
		else {                                                                         \
			printf("FAIL %s: want \"%s\" got \"%s\"\n", name, w_ ? w_ : "(null)",  \
			       g_ ? g_ : "(null)");                                            \
			t_failures++;                                                          \
		}                                                                              \
	} while (0)

#define T_DONE() return t_failures ? 1 : 0
#endif
