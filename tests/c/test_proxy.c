/*
 * test_proxy.c -- plain-C tests of csrc/proxy_protocol.c and csrc/proxy_trust.c, meant to run
 * under AddressSanitizer + UndefinedBehaviorSanitizer (tests/test_proxies.py builds and runs it):
 *
 *   gcc -std=c11 -g -fsanitize=address,undefined -Icsrc tests/c/test_proxy.c \
 *       csrc/proxy_protocol.c csrc/proxy_trust.c -o test_proxy && ./test_proxy
 *
 * Every buffer handed to a parser is a fresh malloc of exactly the bytes it may read, so a read
 * past the end is caught by ASan; every PROXY header is also fed byte by byte.
 */
#include "proxy_protocol.h"
#include "proxy_trust.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *data, size_t n, pw_proxy_info *info, const char **why)
{
    char *buf = copy_exact(data, n);
    memset(info, 0, sizeof *info);
    int rc = pw_proxy_parse(buf, n, info, why);
    free(buf);
    return rc;
}

/* A valid header: complete at `want` bytes with that address, "need more" before, byte by byte. */
static void valid(const char *name, const char *data, size_t n, int want, const char *src, int port)
{
    pw_proxy_info info;
    const char *why;
    for (size_t k = 0; k < (size_t)want; k++) {
        int rc = parse(data, k, &info, &why);
        CHECK(rc == 0, "%s: prefix of %zu bytes gave %d (%s)", name, k, rc, why ? why : "");
    }
    int rc = parse(data, n, &info, &why);
    CHECK(rc == want, "%s: gave %d, want %d (%s)", name, rc, want, why ? why : "");
    if (src) {
        CHECK(info.has_addr && strcmp(info.src, src) == 0 && info.src_port == port,
              "%s: address %s:%d", name, info.src, info.src_port);
    } else {
        CHECK(!info.has_addr, "%s: has an address", name);
    }
}

static void invalid(const char *name, const char *data, size_t n)
{
    pw_proxy_info info;
    const char *why;
    int rc = parse(data, n, &info, &why);
    CHECK(rc == -1 && why, "%s: gave %d, want -1", name, rc);
}

static size_t v2(char *out, int ver_cmd, int fam, const char *body, size_t blen)
{
    memcpy(out, "\r\n\r\n\0\r\nQUIT\n", 12);
    out[12] = (char)ver_cmd;
    out[13] = (char)fam;
    out[14] = (char)(blen >> 8);
    out[15] = (char)(blen & 0xff);
    memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void test_proxy_protocol(void)
{
    const char *v1 = "PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\nGET / HTTP/1.1\r\n";
    valid("v1 tcp4", v1, strlen(v1), 43, "203.0.113.9", 51000);
    const char *v16 = "PROXY TCP6 2001:db8::9 ::1 4711 443\r\n";
    valid("v1 tcp6", v16, strlen(v16), (int)strlen(v16), "2001:db8::9", 4711);
    valid("v1 unknown", "PROXY UNKNOWN\r\n", 15, 15, NULL, 0);
    const char *worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK(strlen(worst) == 107, "the spec's worst case is %zu bytes", strlen(worst));
    valid("v1 107 bytes", worst, 107, 107, NULL, 0);
    char longer[200];
    memset(longer, 'x', sizeof longer);
    memcpy(longer, "PROXY UNKNOWN ", 14);
    memcpy(longer + 106, "\r\n", 2);
    invalid("v1 108 bytes", longer, 108);
    invalid("v1 no CRLF in 107", longer, 150);
    invalid("v1 bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31);
    invalid("v1 double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 33);
    invalid("v1 v6 in TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n", 24);
    invalid("v1 leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 33);
    invalid("v1 port range", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 36);
    invalid("v1 too few", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 30);
    invalid("v1 too many", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 34);
    invalid("v1 protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 32);
    invalid("v1 lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32);
    invalid("plain HTTP", "GET / HTTP/1.1\r\n", 16);
    invalid("early: not PROXY", "PRX", 3);

    char buf[512], body[300];
    /* AF_INET: 203.0.113.9 -> 127.0.0.1, 51000 -> 80 */
    const char inet[12] = {(char)203, 0, 113, 9, 127, 0, 0, 1, (char)0xc7, 0x38, 0, 80};
    size_t n = v2(buf, 0x21, 0x11, inet, 12);
    valid("v2 inet", buf, n, (int)n, "203.0.113.9", 51000);
    memcpy(body, inet, 12);
    memcpy(body + 12, "\x04\x00\x03" "abc" "\x20\x00\x05" "\x01\0\0\0\0", 14);
    n = v2(buf, 0x21, 0x11, body, 26);
    valid("v2 tlvs", buf, n, (int)n, "203.0.113.9", 51000);
    pw_proxy_info info;
    const char *why;
    CHECK(parse(buf, n, &info, &why) == (int)n && info.ssl == 1, "v2 SSL TLV");
    char in6[36] = {0x20, 0x01, 0x0d, (char)0xb8};
    in6[15] = 7;
    in6[31] = 1;
    in6[32] = 0x04;
    in6[33] = (char)0xd2;
    n = v2(buf, 0x21, 0x21, in6, 36);
    valid("v2 inet6", buf, n, (int)n, "2001:db8::7", 1234);
    n = v2(buf, 0x20, 0x00, "", 0);
    valid("v2 local", buf, n, 16, NULL, 0);
    n = v2(buf, 0x20, 0x11, inet, 12);
    valid("v2 local with addresses", buf, n, (int)n, NULL, 0);
    memset(body, 0, 216);
    n = v2(buf, 0x21, 0x31, body, 216);
    valid("v2 unix", buf, n, (int)n, NULL, 0);
    n = v2(buf, 0x31, 0x11, inet, 12);
    invalid("v2 version 3", buf, n);
    n = v2(buf, 0x22, 0x11, inet, 12);
    invalid("v2 command 2", buf, n);
    n = v2(buf, 0x21, 0x12, inet, 12);
    invalid("v2 dgram", buf, n);
    n = v2(buf, 0x21, 0x41, inet, 12);
    invalid("v2 family 4", buf, n);
    n = v2(buf, 0x21, 0x11, inet, 8);
    invalid("v2 short addresses", buf, n);
    memcpy(body, inet, 12);
    memcpy(body + 12, "\x04\x00\x09" "abc", 6);
    n = v2(buf, 0x21, 0x11, body, 18);
    invalid("v2 TLV overruns", buf, n);
    n = v2(buf, 0x21, 0x11, body, 14);
    invalid("v2 TLV truncated", buf, n);
    buf[14] = (char)0xff;
    buf[15] = (char)0xff;
    invalid("v2 too long", buf, 16);
    invalid("v2 bad signature", "\r\n\r\n\0\r\nQUIX\n", 12);
}

static void test_trust(void)
{
    pw_trust t;
    memset(&t, 0, sizeof t);
    CHECK(pw_trust_add(&t, "10.0.0.0/8") == 0, "cidr");
    CHECK(pw_trust_add(&t, "192.0.2.1") == 0, "single");
    CHECK(pw_trust_add(&t, "2001:db8::/32") == 0, "v6 cidr");
    CHECK(pw_trust_add(&t, "172.16.5.4/12") == 0, "host bits set");
    CHECK(pw_trust_add(&t, "unix") == 0 && t.unix_peers, "unix");
    CHECK(pw_trust_add(&t, "10.0.0.0/33") == -1, "/33");
    CHECK(pw_trust_add(&t, "10.0.0.0/") == -1, "empty prefix");
    CHECK(pw_trust_add(&t, "proxy.example") == -1, "a name");
    CHECK(pw_trust_host(&t, "10.200.3.4"), "in /8");
    CHECK(!pw_trust_host(&t, "11.0.0.1"), "out of /8");
    CHECK(pw_trust_host(&t, "192.0.2.1") && !pw_trust_host(&t, "192.0.2.2"), "single");
    CHECK(pw_trust_host(&t, "172.31.255.255") && !pw_trust_host(&t, "172.32.0.0"), "/12");
    CHECK(pw_trust_host(&t, "2001:db8:ffff::1") && !pw_trust_host(&t, "2001:db9::1"), "v6");
    CHECK(pw_trust_host(&t, "::ffff:10.1.2.3"), "v4-mapped");
    CHECK(!pw_trust_host(&t, "garbage") && !pw_trust_host(&t, ""), "not an address");
    for (int i = t.count; i < PW_TRUST_MAX; i++)
        pw_trust_add(&t, "1.2.3.4");
    CHECK(pw_trust_add(&t, "1.2.3.5") == -2, "full");
}

/* One request's headers from "Name: value\n" lines; evaluates them against a fixed list. */
static pw_forwarded eval(const char *lines, unsigned headers, int walk, char **keep)
{
    static pw_trust t;
    memset(&t, 0, sizeof t);
    pw_trust_add(&t, "127.0.0.1");
    pw_trust_add(&t, "192.0.2.0/24");
    pw_trust_add(&t, "2001:db8::/32");
    t.headers = headers;
    size_t n = strlen(lines);
    char *buf = copy_exact(lines, n);
    pw_header h[16];
    uint32_t nh = 0;
    for (size_t pos = 0; pos < n && nh < 16;) {
        char *nl = memchr(buf + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - buf) : n;
        char *colon = memchr(buf + pos, ':', end - pos);
        h[nh].name.off = (uint32_t)pos;
        h[nh].name.len = (uint32_t)(colon - buf - pos);
        size_t v = (size_t)(colon - buf) + 1;
        while (v < end && buf[v] == ' ')
            v++;
        h[nh].value.off = (uint32_t)v;
        h[nh].value.len = (uint32_t)(end - v);
        nh++;
        pos = end + 1;
    }
    pw_forwarded f;
    pw_forwarded_eval(&t, buf, h, nh, walk, &f);
    *keep = buf;
    return f;
}

#define ALL (PW_FWD_XFF | PW_FWD_PROTO | PW_FWD_HOST | PW_FWD_PORT | PW_FWD_FORWARDED)

static void expect_client(const char *lines, const char *client, int port)
{
    char *buf;
    pw_forwarded f = eval(lines, ALL, 1, &buf);
    if (client)
        CHECK(f.have_addr && strcmp(f.host, client) == 0 && f.port == port,
              "%s: got %s:%d (have %d, error %s)", lines, f.host, f.port, f.have_addr,
              f.error ? f.error : "-");
    else
        CHECK(!f.have_addr, "%s: got %s", lines, f.host);
    free(buf);
}

static void test_forwarded(void)
{
    expect_client("X-Forwarded-For: 203.0.113.7", "203.0.113.7", 0);
    expect_client("X-Forwarded-For: 1.1.1.1, 203.0.113.7, 192.0.2.1", "203.0.113.7", 0);
    expect_client("X-Forwarded-For: 192.0.2.9, 192.0.2.1", "192.0.2.9", 0);
    expect_client("x-forwarded-for: 203.0.113.7\nX-Forwarded-For: 192.0.2.1", "203.0.113.7", 0);
    expect_client("X-Forwarded-For: [2001:db9::1]:80", "2001:db9::1", 80);
    expect_client("X-Forwarded-For: 203.0.113.7:8080", "203.0.113.7", 8080);
    expect_client("X-Forwarded-For: junk, 203.0.113.7", "203.0.113.7", 0);
    expect_client("X-Forwarded-For: 203.0.113.7, junk", NULL, 0);
    expect_client("X-Forwarded-For:", NULL, 0);
    char many[2000] = "X-Forwarded-For: ";
    for (int i = 0; i < 100; i++)
        strcat(many, "1.1.1.1, ");
    strcat(many, "203.0.113.7, 192.0.2.1");
    expect_client(many, "203.0.113.7", 0);
    strcpy(many, "X-Forwarded-For: 203.0.113.7");
    for (int i = 0; i < 70; i++)
        strcat(many, ", 192.0.2.1");
    expect_client(many, NULL, 0);
    strcpy(many, "Forwarded: ");
    for (int i = 0; i < 100; i++)
        strcat(many, "for=1.1.1.1, ");
    strcat(many, "for=203.0.113.7, for=192.0.2.1");
    expect_client(many, "203.0.113.7", 0);
    expect_client("Forwarded: for=203.0.113.43", "203.0.113.43", 0);
    expect_client("Forwarded: for=\"[2001:db9::17]:4711\"", "2001:db9::17", 4711);
    expect_client("Forwarded: for=unknown, for=192.0.2.1", "192.0.2.1", 0);
    expect_client("Forwarded: for=\"_hidden:_port\"", NULL, 0);
    expect_client("Forwarded: for=2001:db8::1", NULL, 0);
    expect_client("Forwarded: for=\"a\\\"b\"", NULL, 0);
    expect_client("Forwarded: for=1.2.3.4;;proto=https;by=x", "1.2.3.4", 0);
    expect_client("Forwarded: for=1.2.3.4 x", NULL, 0);

    char *buf;
    pw_forwarded f = eval("X-Forwarded-Proto: http, https\nX-Forwarded-Host: a.example:81\n"
                          "X-Forwarded-Port: 8443", ALL, 1, &buf);
    CHECK(f.https == 1 && f.server_port == 8443 && !f.error, "proto/port");
    CHECK(f.host_len == 12 && memcmp(buf + f.host_off, "a.example:81", 12) == 0, "host");
    free(buf);
    f = eval("X-Forwarded-Proto: ftp\nX-Forwarded-Host: a/b\nX-Forwarded-Port: 0", ALL, 1, &buf);
    CHECK(f.https == -1 && f.host_len == 0 && f.server_port == 0 && f.error, "all bad");
    free(buf);
    f = eval("X-Forwarded-For: 203.0.113.7\nX-Forwarded-Proto: https", PW_FWD_PROTO, 1, &buf);
    CHECK(!f.have_addr && f.https == 1, "only the enabled headers count");
    free(buf);
    f = eval("X-Forwarded-For: 203.0.113.7\nX-Forwarded-Proto: https", ALL, 0, &buf);
    CHECK(!f.have_addr && f.https == 1, "daemon side: no address walk");
    free(buf);
    f = eval("Forwarded: for=203.0.113.1;proto=https;host=\"h.example\", for=192.0.2.1;proto=http\n"
             "X-Forwarded-Proto: http", ALL, 1, &buf);
    CHECK(f.have_addr && strcmp(f.host, "203.0.113.1") == 0 && f.https == 1 && f.host_len == 9,
          "Forwarded element of the client");
    free(buf);
}

int main(void)
{
    test_proxy_protocol();
    test_trust();
    test_forwarded();
    return check_summary();
}
