# Static files (DocumentRoot / --url-alias), served by csrc/static.c without the GIL.
# Included by _core.pyx.  A mount whose app is a pywsgi.static.StaticFiles comes here after
# routing; the GIL is held only to find that object's C-side root (made on first use, per
# process), everything else - resolving, conditionals, ranges, writing, sendfile - runs in C.


cdef class _StaticRoot:
    """Owns one pw_static_root (the prepared root, options, type table and open-file cache)."""
    cdef pw_static_root *root

    def __dealloc__(self):
        if self.root != NULL:
            pw_static_root_free(self.root)
            self.root = NULL


cdef _StaticRoot _static_root(object static_files):
    cdef _StaticRoot made
    cdef pw_static_options opts
    cdef char err[256]
    existing = getattr(static_files, '_pw_core_root', None)
    if type(existing) is _StaticRoot:
        return <_StaticRoot>existing
    root, index, types, cache_control = static_files._core_options()
    server = _server_software.encode('latin-1', 'replace')
    default_type = b'application/octet-stream'
    opts.root = root
    opts.is_file = bool(static_files.is_file)
    opts.index = index
    opts.follow_symlinks = bool(static_files.follow_symlinks)
    opts.precompressed = bool(static_files.precompressed)
    opts.cache_control = cache_control
    opts.types = types
    opts.default_type = default_type
    opts.server = server
    made = _StaticRoot()
    made.root = pw_static_root_new(&opts, err, sizeof(err))
    if made.root == NULL:
        raise OSError(err.decode('utf-8', 'replace'))
    # Two workers racing here each make one; the loser's is freed with its last reference.
    static_files._pw_core_root = made
    return made


cdef bint _serve_static(pw_conn *c, Request req, object static_files, bytes rel_path) except -1:
    cdef _StaticRoot root = _static_root(static_files)  # the reference keeps it alive below
    cdef const char *rel = rel_path
    cdef size_t rel_len = len(rel_path)
    cdef int keep
    with nogil:
        keep = pw_static_serve(_srv, c, root.root, rel, rel_len)
    return keep != 0
