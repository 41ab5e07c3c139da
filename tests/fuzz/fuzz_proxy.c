/*
 * fuzz_proxy.c -- libFuzzer harness for csrc/proxy_protocol.c (PROXY v1/v2 headers) and
 * csrc/proxy_trust.c (X-Forwarded-* and Forwarded from a trusted proxy).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -Icsrc tests/fuzz/fuzz_proxy.c csrc/proxy_protocol.c csrc/proxy_trust.c -o fuzz_proxy
 *
 * (tests/fuzz/run.sh does this.)  Byte 0 picks the target: even = PROXY header, odd =
 * forwarding headers.  The rest is the payload.
 *
 * PROXY header invariants: no memory error or undefined behaviour (every buffer is a fresh
 * malloc of exactly the bytes the parser may read); a complete header is never longer than
 * the input or the bounds (107 bytes for v1, 4096 for v2); every prefix of the input gives the
 * answer the reactor would act on consistently - "need more" or the same error for prefixes
 * shorter than the header, the same length and address for longer ones; an address is a
 * valid IPv4/IPv6 literal.
 *
 * Forwarding-header invariants: the payload is cut into lines "N<value>" whose first byte
 * picks the header name; the forwarded host lies inside the buffer and is non-empty when set;
 * a client address is a valid literal; https is -1, 0 or 1; the port is 0-65535.
 */
#include "proxy_protocol.h"
#include "proxy_trust.h"
#include "fuzz.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_ip(const char *text)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, text, bin) == 1 || inet_pton(AF_INET6, text, bin) == 1;
}

static int parse_copy(const uint8_t *data, size_t n, pw_proxy_info *info, const char **why)
{
    char *buf = copy_exact(data, n);
    memset(info, 0, sizeof *info);
    int rc = pw_proxy_parse(buf, n, info, why);
    free(buf);
    return rc;
}

static void fuzz_proxy_header(const uint8_t *data, size_t size)
{
    pw_proxy_info whole, part;
    const char *why, *why_part;
    int rc = parse_copy(data, size, &whole, &why);
    REQUIRE(rc >= -1);
    REQUIRE(rc <= (int)size);
    REQUIRE((rc == -1) == (why != NULL));
    if (rc > 0) {
        REQUIRE(whole.version == 1 || whole.version == 2);
        REQUIRE(whole.version != 1 || rc <= PW_PROXY_V1_MAX);
        REQUIRE(whole.version != 2 || rc <= PW_PROXY_V2_MAX);
        if (whole.has_addr) {
            REQUIRE(is_ip(whole.src));
            REQUIRE(whole.src_port >= 0 && whole.src_port <= 65535);
        }
    }
    /* Resuming: the reactor calls again with a longer prefix each time. */
    size_t step = size > 64 ? size / 32 : 1;
    for (size_t k = 0; k < size; k += step) {
        int r = parse_copy(data, k, &part, &why_part);
        if (rc > 0 && k < (size_t)rc) {
            REQUIRE(r == 0);  /* a valid header is never refused early */
        } else if (rc > 0) {
            REQUIRE(r == rc);
            REQUIRE(part.has_addr == whole.has_addr);
            REQUIRE(!whole.has_addr || strcmp(part.src, whole.src) == 0);
        } else if (rc == 0) {
            REQUIRE(r == 0);
        } else {
            REQUIRE(r <= 0);  /* refused at once, or not yet known */
        }
    }
}

static void fuzz_forwarded(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"X-Forwarded-For", "x-forwarded-proto",
                                        "X-Forwarded-Host", "X-FORWARDED-PORT", "Forwarded",
                                        "X-Other"};
    static pw_trust trust;
    static int ready;
    if (!ready) {
        pw_trust_add(&trust, "127.0.0.1");
        pw_trust_add(&trust, "192.0.2.0/24");
        pw_trust_add(&trust, "2001:db8::/32");
        pw_trust_add(&trust, "10.0.0.0/8");
        ready = 1;
    }
    if (size < 1)
        return;
    trust.headers = data[0] & 0x1f;
    data++;
    size--;
    /* buf = all header names then all values; headers point into it */
    pw_header headers[32];
    uint32_t nh = 0;
    size_t cap = size + 32 * 20;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    size_t len = 0, pos = 0;
    while (pos < size && nh < 32) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (end > pos) {  /* line: one byte picks the name, the rest is the value */
            const char *name = names[data[pos] % 6];
            size_t nlen = strlen(name), vlen = end - pos - 1;
            memcpy(buf + len, name, nlen);
            headers[nh].name.off = (uint32_t)len;
            headers[nh].name.len = (uint32_t)nlen;
            len += nlen;
            memcpy(buf + len, data + pos + 1, vlen);
            headers[nh].value.off = (uint32_t)len;
            headers[nh].value.len = (uint32_t)vlen;
            len += vlen;
            nh++;
        }
        pos = end + 1;
    }
    /* exact-size copy, so a read past the last value is caught */
    char *exact = copy_exact((const uint8_t *)buf, len);
    free(buf);
    for (int walk = 0; walk < 2; walk++) {
        pw_forwarded f;
        pw_forwarded_eval(&trust, exact, headers, nh, walk, &f);
        REQUIRE(f.https >= -1 && f.https <= 1);
        REQUIRE(f.host_off + (size_t)f.host_len <= len);
        REQUIRE(f.server_port >= 0 && f.server_port <= 65535);
        if (f.have_addr) {
            REQUIRE(walk);
            REQUIRE(is_ip(f.host));
            REQUIRE(f.port >= 0 && f.port <= 65535);
        }
    }
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_forwarded(data + 1, size - 1);
    else
        fuzz_proxy_header(data + 1, size - 1);
    return 0;
}
