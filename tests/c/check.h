/*
 * check.h -- what the plain-C test programs share (test_parser.c, test_proxy.c): CHECK, which
 * counts a check and reports a failed one without stopping; exact-size copies, so that ASan
 * catches a read past the end; and the summary line the Python tests look for.
 */
#ifndef PW_TEST_CHECK_H
#define PW_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

/* A fresh malloc of exactly n bytes (1 for none) holding src's. */
static inline char *copy_exact(const char *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, src, n);
    return p;
}

/* Prints "N checks, M failures" (tests/test_*.py look for " 0 failures"); the exit status. */
static inline int check_summary(void)
{
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}

#endif
