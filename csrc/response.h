/*
 * response.h -- the sans-I/O parts of a response head, shared by every path that answers: the
 * application's responses (Request in pywsgi/_core.pyx), static files (static.c) and the
 * core's own error answers (output.c).  Plain C: formats into the caller's buffer, no I/O.
 */
#ifndef PW_RESPONSE_H
#define PW_RESPONSE_H

/* The reason phrase pywsgi sends for a status code (RFC 9110 section 15). */
const char *pw_status_reason(int status);

/* IMF-fixdate of now, cached per second: writes 29 bytes + NUL into out[30]. */
void pw_http_date(char out[30]);

/*
 * The server's end of a response head: how the body is framed and whether the connection
 * stays, decided once for every path (RFC 9112 section 6.3 and 9.3):
 *   - no body (HEAD, 1xx, 204, 304): no framing header beyond a known Content-Length
 *     (never on 1xx/204);
 *   - a known length: Content-Length;
 *   - else on HTTP/1.1: Transfer-Encoding: chunked; on HTTP/1.0: the body ends when the
 *     connection closes, so it is not kept;
 *   - Date and Server unless the head has them; extra_lines (Strict-Transport-Security); Connection: close when the connection is not
 *     kept (or the client's is not, for a daemon's pooled relay connection), Connection:
 *     keep-alive when an HTTP/1.0 connection is;
 *   - the blank line that ends the head.
 */
typedef struct pw_head {
    int status;
    int http10;               /* the request was HTTP/1.0 */
    int no_body;              /* HEAD, 1xx, 204, 304: no body bytes follow the head */
    long long content_length; /* -1: not known */
    int keep_alive;           /* in: the connection may stay; out: it does */
    int announce_close;       /* say Connection: close although keep_alive (the client's
                                  connection closes, not this one: a daemon's relay) */
    int has_date;             /* the head has a Date field already */
    const char *server_line;  /* "Server: ...\r\n" to add, or NULL: the head has one */
    int chunked;              /* out: the body goes in chunks */
    const char *extra_lines;  /* more lines the server adds ("Name: value\r\n"...: the HSTS
                                  header on https), or NULL */
} pw_head;

/* The small HTML page of an answer the server gives itself (an error, a refusal): written into
 * out[room] with the status, its reason and - if given - a message (already HTML); its length. */
int pw_error_page(int status, const char *message, char *out, int room);

/* Decide h's framing and write the head's end into out[room]; its length.  Never more than
 * room - 1 bytes (the longest is about 200). */
int pw_head_finish(pw_head *h, char *out, int room);

#endif
