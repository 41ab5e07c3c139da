# Static files (DocumentRoot / --url-alias), served by csrc/static.c without the GIL.
# Included by _core.pyx; placeholder until the static-file module lands.

cdef bint _serve_static(pw_conn *c, Request req, object static_files, bytes rel_path) except -1:
    _simple_response(c, req, 501)
    return req.keep_alive
