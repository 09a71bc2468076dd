/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A minimal unit-test harness. Each test case prints one line, "PASS: name" or
 * "FAIL: name: file:line: expression"; tests/run.sh counts those lines across every
 * test program. A program that crashes or exits nonzero without printing FAIL is counted
 * as a failure by the runner too.
 */
#ifndef IMAGO_TESTS_CHECK_H
#define IMAGO_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failed_;     /* failures in the running case */
static int check_total_fail_; /* failed cases in this program */
static const char *check_prog_ = "unit";

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			if (!check_failed_)                                              \
				printf("FAIL: %s/%s: %s:%d: %s\n", check_prog_,        \
				       check_case_, __FILE__, __LINE__, #cond);          \
			check_failed_ = 1;                                               \
		}                                                                        \
	} while (0)

/* CHECK and stop the case on failure (for conditions later steps depend on). */
#define REQUIRE(cond)                                                                    \
	do {                                                                             \
		CHECK(cond);                                                             \
		if (check_failed_)                                                       \
			return;                                                          \
	} while (0)

static const char *check_case_ = "";

#define RUN(fn)                                                                          \
	do {                                                                             \
		check_case_ = #fn;                                                       \
		check_failed_ = 0;                                                       \
		fn();                                                                    \
		if (check_failed_)                                                       \
			check_total_fail_++;                                             \
		else                                                                     \
			printf("PASS: %s/%s\n", check_prog_, #fn);                       \
		fflush(stdout);                                                          \
	} while (0)

#define CHECK_MAIN_END() return check_total_fail_ ? 1 : 0

#endif
