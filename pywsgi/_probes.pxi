# --health-url and --ready-url (csrc/probes.h, docs/deploying.md): the reactor answers them
# itself, in C, as soon as a head is parsed; this only fills in its configuration.  Included by
# _core.pyx after _status.pxi (the master's flag and the daemon groups' live counts are in the
# scoreboard segment).

# Who may always ask: loopback and UNIX-socket clients (the container's HEALTHCHECK, a local
# load balancer); --health-allow adds networks (a kubelet probes from its node's address).
HEALTH_ALWAYS_ALLOWED = ('127.0.0.0/8', '::1', 'unix')

cdef bytes _health_url_raw = b''   # keep the configured paths alive for the reactor
cdef bytes _ready_url_raw = b''


cdef _configure_probes(pw_config *cfg, config, list mounts):
    """config: the CoreConfig (pywsgi/process/core_config.py); a daemon's has no probe URL."""
    global _health_url_raw, _ready_url_raw
    cdef pw_probes *p = &cfg.probes
    cdef pw_sb_group *g
    memset(p, 0, sizeof(pw_probes))
    if config.daemon_role:
        return  # the server processes answer; a daemon's requests are relayed ones
    if _scoreboard != NULL:
        p.stopping = &_scoreboard.stopping
    health = config.health_url
    ready = config.ready_url
    if health:
        _health_url_raw = health.encode('latin-1')
        p.health_url = _health_url_raw
        p.health_url_len = len(_health_url_raw)
    if ready:
        _ready_url_raw = ready.encode('latin-1')
        p.ready_url = _ready_url_raw
        p.ready_url_len = len(_ready_url_raw)
    for item in HEALTH_ALWAYS_ALLOWED + tuple(config.health_allow):
        rc = pw_trust_add(&p.allow, str(item).encode('latin-1'))
        if rc == -2:
            raise ValueError("--health-allow: at most %d networks"
                             % (64 - len(HEALTH_ALWAYS_ALLOWED) + 1))
        if rc != 0:
            raise ValueError("--health-allow: not an address or CIDR network: %r" % (item,))
    if not ready:
        return
    # every daemon process group this process relays to must have a live process
    names = set()
    for m in mounts:
        group = (<_Mount>m).daemon
        if group is None or group.name in names:
            continue
        names.add(group.name)
        g = _sb_group_of(group)
        if g == NULL or p.ngroups == PW_PROBE_GROUPS:
            continue  # (the master maps the scoreboard whenever --ready-url is set)
        p.groups[p.ngroups] = g
        p.ngroups += 1
