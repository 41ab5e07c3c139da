/*
 * response.c -- see response.h: the sans-I/O parts of a response head.  Plain C, no Python.
 */
#include "response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void pw_http_date(char out[30])
{
    /* Per thread, so no lock: each worker formats at most once a second. */
    static __thread time_t cached_sec;
    static __thread char cached[30];
    time_t now = time(NULL);
    if (now != cached_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_sec = now;
    }
    memcpy(out, cached, 30);
}

const char *pw_status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* The head's end, appended piece by piece: this runs for every response, and snprintf's
 * format parsing cost about as much as the rest of it together. */
typedef struct {
    char *p;
    int n, room;
} head_out;

static void put(head_out *o, const char *text, int len)
{
    if (len > o->room - 1 - o->n)
        len = o->room - 1 - o->n; /* never past room - 1 (the caller's buffers are ample) */
    if (len > 0) {
        memcpy(o->p + o->n, text, (size_t)len);
        o->n += len;
    }
}

#define PUT(o, literal) put((o), literal, (int)sizeof literal - 1)

static void put_decimal(head_out *o, long long v)
{
    char digits[24];
    int i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put(o, digits + i, (int)sizeof digits - i);
}

int pw_head_finish(pw_head *h, char *out, int room)
{
    head_out o = {out, 0, room};
    h->chunked = 0;
    if (!h->no_body && h->content_length < 0) {
        if (h->http10)
            h->keep_alive = 0; /* close-delimited */
        else
            h->chunked = 1;
    }
    if (h->content_length >= 0 && h->status != 204 && h->status >= 200) {
        PUT(&o, "Content-Length: ");
        put_decimal(&o, h->content_length);
        PUT(&o, "\r\n");
    }
    if (h->chunked)
        PUT(&o, "Transfer-Encoding: chunked\r\n");
    if (!h->has_date) {
        char date[30];
        pw_http_date(date);
        PUT(&o, "Date: ");
        put(&o, date, 29);
        PUT(&o, "\r\n");
    }
    if (h->server_line)
        put(&o, h->server_line, (int)strlen(h->server_line));
    if (h->extra_lines)
        put(&o, h->extra_lines, (int)strlen(h->extra_lines));
    if (!h->keep_alive || h->announce_close)
        PUT(&o, "Connection: close\r\n");
    else if (h->http10)
        PUT(&o, "Connection: keep-alive\r\n");
    PUT(&o, "\r\n");
    return o.n;
}

int pw_error_page(int status, const char *message, char *out, int room)
{
    const char *reason = pw_status_reason(status);
    int n = snprintf(out, room,
                     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                     "<body><h1>%s</h1>%s%s%s</body></html>\n",
                     status, reason, reason, message ? "<p>" : "", message ? message : "",
                     message ? "</p>" : "");
    return n < room ? n : room - 1;
}
