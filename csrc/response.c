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

int pw_head_finish(pw_head *h, char *out, int room)
{
    int n = 0;
    char date[30];
    h->chunked = 0;
    if (!h->no_body && h->content_length < 0) {
        if (h->http10)
            h->keep_alive = 0; /* close-delimited */
        else
            h->chunked = 1;
    }
    if (h->content_length >= 0 && h->status != 204 && h->status >= 200)
        n += snprintf(out + n, room - n, "Content-Length: %lld\r\n", h->content_length);
    if (h->chunked)
        n += snprintf(out + n, room - n, "Transfer-Encoding: chunked\r\n");
    if (!h->has_date) {
        pw_http_date(date);
        n += snprintf(out + n, room - n, "Date: %s\r\n", date);
    }
    if (h->server_line)
        n += snprintf(out + n, room - n, "%s", h->server_line);
    if (!h->keep_alive || h->announce_close)
        n += snprintf(out + n, room - n, "Connection: close\r\n");
    else if (h->http10)
        n += snprintf(out + n, room - n, "Connection: keep-alive\r\n");
    n += snprintf(out + n, room - n, "\r\n");
    return n < room ? n : room - 1;
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
