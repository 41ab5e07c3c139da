/*
 * static.h -- static files (document root, URL aliases) served from C, without Python.
 *
 * A root is prepared once (pw_static_root_new: the realpath'd directory or file, the directory
 * index names, the options and the Content-Type table, copied) and then serves requests from
 * any number of worker threads at once (pw_static_serve), each writing one complete response:
 * 200/206 with sendfile, 301 (directory without its slash), 304, 403, 404, 405, 412, 416.
 * Hot files stay open in a small per-root cache, revalidated with stat() on every hit, so a
 * changed or replaced file is never served stale.
 */
#ifndef PW_STATIC_H
#define PW_STATIC_H

#include <stddef.h>
#include "reactor.h"

typedef struct pw_static_root pw_static_root;

typedef struct {
    const char *root; /* realpath of the directory, or of the single file (is_file) */
    int is_file;
    const char *index;         /* directory index names, "index.html\0index.htm\0\0" */
    int follow_symlinks;       /* 0: a symlink may not lead out of the root (403) */
    int precompressed;         /* serve name.br / name.gz when Accept-Encoding allows */
    const char *cache_control; /* Cache-Control value, or NULL / "" for none */
    const char *types;         /* "ext\0content-type\0...\0\0" (lower-case ext, no dot) */
    const char *default_type;  /* for names without a known extension */
    const char *server;        /* Server header value */
} pw_static_options;

pw_static_root *pw_static_root_new(const pw_static_options *o, char *err, size_t errlen);
void pw_static_root_free(pw_static_root *r);

/*
 * Serve the request whose head is in c for `rel` (rel_len bytes: the decoded, normalised path
 * below the mount, "" or starting with '/').  Writes the whole response; returns 1 if the
 * connection may be kept alive, 0 if it must be closed.
 */
int pw_static_serve(pw_server *s, pw_conn *c, pw_static_root *r, const char *rel, size_t rel_len);

/*
 * Would pw_static_serve find something to serve for `rel` (a regular file, or a directory
 * holding an index file)?  Writes nothing; 1 yes, 0 no.  For an application mounted at '/'
 * behind the document root: existing files win, everything else goes to the application.
 */
int pw_static_lookup(pw_server *s, pw_static_root *r, const char *rel, size_t rel_len);

#endif
