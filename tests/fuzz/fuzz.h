/*
 * fuzz.h -- what the libFuzzer harnesses share (fuzz_http_parser.c, fuzz_proxy.c): REQUIRE, an
 * invariant whose violation aborts (libFuzzer reports it as a crash and keeps the input), and
 * exact-size copies, so that ASan catches a read past the end.
 */
#ifndef PW_FUZZ_H
#define PW_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                   \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s: invariant failed: %s (line %d)\n", __FILE__, #cond,    \
                    __LINE__);                                                          \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* A fresh malloc of exactly n bytes (1 for none) holding src's. */
static inline char *copy_exact(const uint8_t *src, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, src, n);
    return p;
}

#endif
