# --server-status (docs/server-status.md): the scoreboard of live counters and the status URL.
# Included by _core.pyx.  The master maps the scoreboard (csrc/scoreboard.c, shared anonymous
# memory) before it forks, so the pointer below is valid in every child.  The counting itself
# is in C (reactor.c per answered request, the relay around pw_relay); this file only fills in
# the master's fields, reads snapshots and answers the status URL from a server process.

from libc.string cimport memcmp, strncpy

cdef pw_scoreboard *_scoreboard = NULL   # NULL: --server-status is off
cdef pw_sb_slot *_sb_slot = NULL         # this process's slot
cdef int _sb_pid = 0                     # this process's pid, when it entered its slot
cdef dict _sb_group_index = {}           # daemon group name -> index in the scoreboard
cdef pw_sb_group *_direct_group = NULL   # the group of the direct relay (see _relay_conn)
cdef str _status_url = None              # e.g. '/server-status'; None: not served here
cdef bytes _status_url_raw = b''         # keeps _status_url_c alive
cdef const char *_status_url_c = NULL
cdef size_t _status_url_n = 0            # 0: no status URL in this process
cdef object _status_allow = ()           # ipaddress networks allowed to see it

_STATE_NAMES = {PW_SB_EMPTY: 'empty', PW_SB_STARTING: 'starting', PW_SB_READY: 'ready',
                PW_SB_STOPPING: 'stopping', PW_SB_DEAD: 'dead'}


# -- the master's side

def scoreboard_create(int nslots, group_names):
    """Map the scoreboard for nslots process slots and the named daemon groups (the master,
    before forking)."""
    global _scoreboard
    cdef pw_scoreboard *sb
    cdef pw_sb_group *g
    scoreboard_close()
    sb = pw_sb_create(nslots, len(group_names))
    if sb == NULL:
        raise OSError("cannot map the server-status scoreboard")
    for i, name in enumerate(group_names):
        g = pw_sb_group_at(sb, i)
        raw = name.encode('utf-8', 'replace')[:PW_SB_GROUP_NAME - 1]
        strncpy(g.name, raw, PW_SB_GROUP_NAME - 1)
    _scoreboard = sb


def scoreboard_announce_stop():
    """The master begins a graceful stop of the whole server (SIGTERM): from now on every
    server process answers --ready-url with 503 and closes each connection after its response,
    while it still accepts for --shutdown-delay (csrc/probes.h)."""
    if _scoreboard != NULL:
        pw_sb_announce_stop(_scoreboard)


def scoreboard_group_live(int group, int live):
    """The master: how many processes of daemon group `group` accept requests now (ready and
    not stopping); --ready-url answers 503 while it is 0."""
    cdef pw_sb_group *g = pw_sb_group_at(_scoreboard, group)
    if g != NULL:
        pw_sb_set_live(g, live)


def scoreboard_close():
    global _scoreboard
    if _scoreboard != NULL:
        pw_sb_destroy(_scoreboard)
        _scoreboard = NULL


def scoreboard_spawning(int index, bint daemon, int group, int process_index,
                        bint replaces_live):
    """A process is about to be forked into slot `index` (the master, before fork());
    replaces_live: another process still serves in the slot (a graceful restart)."""
    cdef pw_sb_slot *slot = pw_sb_slot_at(_scoreboard, index)
    cdef pw_sb_group *g
    if slot == NULL:
        return
    restart = slot.started_us != 0   # the slot had a process before
    slot.kind = PW_SB_DAEMON if daemon else PW_SB_SERVER
    slot.group = group
    slot.process_index = process_index
    slot.state = PW_SB_STARTING
    slot.started_us = pw_sb_wall_us()
    if not replaces_live:
        # the slot's last process is gone: nothing of its in-progress counts is left
        slot.busy = 0
        slot.connections = 0
    if restart:
        slot.restarts += 1
        g = pw_sb_group_at(_scoreboard, group)
        if g != NULL:
            g.restarts += 1


def scoreboard_forked(int index, int pid):
    cdef pw_sb_slot *slot = pw_sb_slot_at(_scoreboard, index)
    if slot != NULL:
        slot.pid = pid


def scoreboard_exited(int index, int pid, int still_serving=0):
    """The process pid of slot `index` exited; `still_serving` is the pid that keeps serving in
    the slot (a failed graceful restart), else 0."""
    cdef pw_sb_slot *slot = pw_sb_slot_at(_scoreboard, index)
    if slot == NULL or slot.pid != pid:
        return
    if still_serving:
        slot.pid = still_serving
        slot.state = PW_SB_READY
        return
    slot.state = PW_SB_DEAD
    slot.busy = 0
    slot.connections = 0


# -- a child's side

cdef pw_sb_slot *_scoreboard_enter(config, int threads) except? NULL:
    """Called by serve(): find this process's slot and, in a server process, the status URL
    (config: the CoreConfig; a daemon's has no status URL)."""
    global _sb_slot, _sb_group_index, _status_url, _status_url_raw, _status_allow
    global _status_url_c, _status_url_n, _sb_pid
    cdef pw_sb_group *g
    _sb_slot = NULL
    _status_url = None
    _status_url_n = 0
    if _scoreboard == NULL:
        return NULL
    _sb_slot = pw_sb_slot_at(_scoreboard, config.scoreboard_slot)
    if _sb_slot == NULL:
        return NULL
    _sb_pid = os.getpid()
    _sb_slot.pid = _sb_pid
    _sb_slot.threads = threads
    _sb_slot.state = PW_SB_READY
    _sb_group_index = {}
    for i in range(_scoreboard.ngroups):
        g = pw_sb_group_at(_scoreboard, i)
        _sb_group_index[g.name.decode('utf-8', 'replace')] = i
    if config.server_status:
        from pywsgi.observe import status
        _status_url = config.server_status
        _status_url_raw = _status_url.encode('latin-1')
        _status_url_c = PyBytes_AS_STRING(_status_url_raw)
        _status_url_n = <size_t>PyBytes_GET_SIZE(_status_url_raw)
        _status_allow = status.allowed_networks(config.server_status_allow)
    return _sb_slot


cdef void _scoreboard_stopping() noexcept:
    # During a graceful restart the slot already shows the new process: leave it alone.
    if _sb_slot != NULL and _sb_slot.pid == _sb_pid:
        _sb_slot.state = PW_SB_STOPPING


cdef pw_sb_group *_sb_group_of(object group):
    """The scoreboard record of a daemon group (NULL when --server-status is off)."""
    if _scoreboard == NULL:
        return NULL
    index = _sb_group_index.get(getattr(group, 'name', None))
    if index is None:
        return NULL
    return pw_sb_group_at(_scoreboard, <int>index)


def scoreboard_snapshot():
    """Every slot and group as plain dicts (any process; a consistent-enough copy: each counter
    is read once, without a lock)."""
    cdef pw_sb_slot *slot
    cdef pw_sb_group *g
    if _scoreboard == NULL:
        return None
    slots = []
    for i in range(_scoreboard.nslots):
        slot = pw_sb_slot_at(_scoreboard, i)
        slots.append({
            'slot': i,
            'pid': slot.pid,
            'role': 'daemon' if slot.kind == PW_SB_DAEMON else 'server',
            'group': slot.group,
            'index': slot.process_index,
            'state': _STATE_NAMES.get(slot.state, 'unknown'),
            'threads': slot.threads,
            'started': slot.started_us / 1e6,
            'restarts': slot.restarts,
            'requests': slot.requests,
            'bytes_out': slot.bytes_out,
            'busy': max(0, slot.busy),
            'connections': max(0, slot.connections),
            'status': [slot.status[k] for k in range(6)],
            'latency_sum': slot.latency_us_sum / 1e6,
            'latency': [slot.latency[k] for k in range(PW_SB_BUCKETS)],
            'access_log_dropped': slot.access_log_dropped,
        })
    groups = []
    for i in range(_scoreboard.ngroups):
        g = pw_sb_group_at(_scoreboard, i)
        groups.append({
            'name': g.name.decode('utf-8', 'replace'),
            'restarts': g.restarts,
            'relayed': g.relayed,
            'in_flight': max(0, g.in_flight),
            'errors': [g.errors[k] for k in range(3)],
            'live': g.live,
        })
    return {
        'master_pid': _scoreboard.master_pid,
        'created': _scoreboard.created_us / 1e6,
        'now': pw_sb_wall_us() / 1e6,
        'bounds': [pw_sb_bounds[k] for k in range(PW_SB_BUCKETS - 1)],
        'slots': slots,
        'groups': groups,
    }


# -- the status URL (server processes only)

cdef bint _is_status_target(pw_conn *c) noexcept nogil:
    """Whether the raw request path is the status URL or below it (the direct relay asks
    this without the GIL, to leave such requests to _serve_one)."""
    cdef pw_request *r = &c.req
    cdef size_t n = _status_url_n
    if n == 0 or r.path.len < n:
        return False
    if memcmp(c.buf + r.path.off, _status_url_c, n) != 0:
        return False
    return r.path.len == n or c.buf[r.path.off + n] == b'/'


cdef bint _serve_status(pw_conn *c, Request req, str path) except -1:
    """Answer the status URL: HTML, JSON or Prometheus text, from the scoreboard."""
    from pywsgi.observe import status
    cdef pw_request *r = &c.req
    c.status_page = 1  # the monitor's own polls would only blur the counts it shows
    peer = _peer(c)
    if not status.is_allowed(peer, _status_allow):
        _log().info("%s:%d: client not allowed to see the server status "
                    "(--server-status-allow): 403" % (peer, c.peer_port))
        _simple_response(c, req, 403)
        return req.keep_alive
    query = (c.buf + r.query.off)[:r.query.len].decode('latin-1') if r.has_query else ''
    kind = status.page_kind(path[len(_status_url):], query)
    if kind is None:
        _simple_response(c, req, 404)
        return req.keep_alive
    body, content_type = status.render(kind, scoreboard_snapshot(), _status_url)
    req.status = None
    req._check('200 OK', [('Content-Type', content_type), ('Cache-Control', 'no-store'),
                          ('X-Content-Type-Options', 'nosniff')])
    req.content_length = len(body)
    req._send_head(body)
    return req.keep_alive
