"""The core's contract: every value ``pywsgi._core.serve(listen_fds, mounts, config)`` reads, in
one frozen, typed object, built in one place - a child's life (worker.py), for a server process
or a daemon process of a group - from the settings and what the master tells the child.

The core keeps no defaults of its own and reads nothing else (no dict, no settings): a value
the core needs is a field here, with its type, filled from the settings table (which holds the
defaults), a daemon group's options (config/daemon_groups.py) or the master. The mounts come
beside it (pywsgi.site.mounts.LoadedMount). tests/unit/test_core_config.py checks that every
``config.NAME`` the core reads is a field and every field is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from pywsgi.config.daemon_groups import SHUTDOWN_TIMEOUT, DaemonGroup
from pywsgi.config.proxies import DEFAULT_HEADERS
from pywsgi.config.settings import SETTINGS_BY_NAME
from pywsgi.config.typed import Settings
from pywsgi.daemon.recycle import RecyclePolicy, RecycleWatch
from pywsgi.process.tls import TLSMaterial

__all__ = ["CoreConfig", "core_config"]


@dataclass(frozen=True)
class CoreConfig:
    # -- this process
    threads: int                    # worker threads (1: the reactor thread runs each request)
    processes: int                  # processes sharing the listening sockets
    process_index: int              # 0..processes-1 (pywsgi.process_index)
    daemon_role: bool               # a daemon process: requests come relayed from a server's
    queue_timeout: float            # daemon role: longest a relayed request may have waited; 0: any
    # -- the reactor: timeouts (seconds) and limits (bytes, counts)
    keep_alive_timeout: float
    header_timeout: float
    header_max_timeout: float
    header_min_rate: int
    body_timeout: float
    body_buffer_size: int
    socket_timeout: float
    send_min_rate: float
    send_buffer_size: int
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_head: int
    limit_request_body: int         # 0: no limit
    max_clients: int                # 0: no cap
    # -- trusted proxies (docs/proxies.md)
    trust_proxy: Tuple[str, ...]
    trust_proxy_header: Tuple[str, ...]     # the headers honoured (the default resolved)
    proxy_protocol: bool
    # -- HTTPS (docs/tls.md); a daemon process gets no certificate and no HTTPS socket
    tls: Optional[TLSMaterial]      # the certificates the master read (process/tls.py); None: none
    https_listen_fds: Tuple[int, ...]   # which of serve()'s listening fds speak TLS
    ssl_library: Optional[str]      # the libssl to load; None: Python's, else the system's
    ssl_environ: bool               # the SSL_* variables in the environ (a daemon's: relayed)
    hsts_policy: Optional[str]      # Strict-Transport-Security's value on https responses
    https_redirect_port: int        # --https-only: plain HTTP gets 301 to this port; 0: served
    https_redirect_host: str        # ... on this host when the request names none
    # -- what the application sees, and the Server header
    server_name: str
    port: int
    url_scheme: str
    server_software: str
    allow_encoded_slashes: str
    # -- logs
    log_level: str
    access_log: Optional[str]       # a path or '-'; None: no access log (never in daemon role)
    access_log_format: Optional[str]    # None: Apache's combined format
    access_log_fd: Optional[int]    # opened as root before --user took effect; None: open path
    # -- server status (docs/server-status.md)
    scoreboard_slot: int            # this process's slot (used when the master mapped one)
    server_status: Optional[str]    # the status URL this process answers; None: none
    server_status_allow: Tuple[str, ...]
    # -- health and readiness (docs/deploying.md): the server processes answer them
    health_url: Optional[str]       # None: none (always None in daemon role)
    ready_url: Optional[str]
    health_allow: Tuple[str, ...]   # besides loopback and UNIX-socket clients
    # -- stopping and recycling
    graceful_timeout: float         # a stopping process's requests get this long
    maximum_requests: int           # recycle after this many requests (with jitter); 0: never
    recycle: RecyclePolicy          # request-timeout, a daemon group's limits (daemon/recycle.py)
    on_recycle: Optional[Callable[[], None]]    # called when it recycles: tell the master
    on_reload: Optional[Callable[[], None]]     # a changed script: ask for a new process first;
    #                                             None: recycle instead


def core_config(settings: Settings, *, process_index: int, scoreboard_slot: int,
                access_log_fd: Optional[int] = None, group: Optional[DaemonGroup] = None,
                script_paths: Sequence[str] = (), tls: Optional[TLSMaterial] = None,
                https_listen_fds: Sequence[int] = (),
                on_recycle: Optional[Callable[[], None]] = None,
                on_reload: Optional[Callable[[], None]] = None) -> CoreConfig:
    """The core's config for a server process, or (group) a daemon process of that group;
    `settings` are the process's own (a daemon's: daemon.group.group_settings), `script_paths`
    the group's script files (a change replaces a daemon process); `tls` and `https_listen_fds`:
    the certificates and the HTTPS sockets the master hands a server process (a daemon process
    gets neither, whatever is passed)."""
    daemon = group is not None
    if group is None:   # a server process: --request-timeout and --interrupt-timeout only
        recycle = RecyclePolicy(
            request_timeout=settings.request_timeout,
            interrupt_timeout=settings.interrupt_timeout,
            restart_interval=0.0, inactivity_timeout=0.0,
            graceful_timeout=settings.graceful_timeout, shutdown_timeout=SHUTDOWN_TIMEOUT,
            timeout_setting="--request-timeout", watch=None)
    else:   # a daemon process: its group's limits (request-timeout= is in its settings too)
        recycle = RecyclePolicy(
            request_timeout=group.request_timeout, interrupt_timeout=group.interrupt_timeout,
            restart_interval=group.restart_interval, inactivity_timeout=group.inactivity_timeout,
            graceful_timeout=group.graceful_timeout,
            shutdown_timeout=group.shutdown_timeout or SHUTDOWN_TIMEOUT,
            timeout_setting="request-timeout= of daemon process group %s" % group.name,
            watch=RecycleWatch(group, list(script_paths)))
    return CoreConfig(
        threads=settings.threads,
        processes=settings.processes,
        process_index=process_index,
        daemon_role=daemon,
        queue_timeout=group.queue_timeout if group is not None else 0.0,
        keep_alive_timeout=settings.keep_alive_timeout,
        header_timeout=settings.header_timeout,
        header_max_timeout=settings.header_max_timeout,
        header_min_rate=settings.header_min_rate,
        body_timeout=settings.body_timeout,
        body_buffer_size=settings.body_buffer_size,
        socket_timeout=settings.socket_timeout,
        send_min_rate=settings.send_min_rate,
        send_buffer_size=settings.send_buffer_size,
        limit_request_line=settings.limit_request_line,
        limit_request_fields=settings.limit_request_fields,
        limit_request_field_size=settings.limit_request_field_size,
        # 0 is the table's default, as it always was in the core
        limit_request_head=(settings.limit_request_head
                            or SETTINGS_BY_NAME["limit_request_head"].default),
        limit_request_body=settings.limit_request_body,
        max_clients=settings.max_clients or 0,
        trust_proxy=tuple(settings.trust_proxy),
        trust_proxy_header=tuple(settings.trust_proxy_header) or DEFAULT_HEADERS,
        proxy_protocol=settings.proxy_protocol,
        # TLS ends in the server processes: no key in a daemon (the relay carries the https
        # flag and the SSL_* variables; the daemon adds HSTS and the variables from them)
        tls=None if daemon else tls,
        https_listen_fds=() if daemon else tuple(https_listen_fds),
        ssl_library=settings.ssl_library,
        ssl_environ=settings.ssl_environ,
        hsts_policy=settings.hsts_policy,
        https_redirect_port=(settings.https_port or 0) if settings.https_only else 0,
        https_redirect_host=settings.server_name or "localhost",
        # '' (given empty) falls back as the core always did
        server_name=settings.server_name or settings.host or "localhost",
        port=settings.port,
        url_scheme=settings.url_scheme,
        server_software=settings.server_software or "pywsgi",
        allow_encoded_slashes=settings.allow_encoded_slashes,
        log_level=settings.log_level,
        # a daemon's responses go through a server process, which logs them
        access_log=None if daemon else settings.access_log,
        access_log_format=settings.access_log_format,
        access_log_fd=access_log_fd,
        scoreboard_slot=scoreboard_slot,
        server_status=None if daemon else settings.server_status,  # the server answers it
        server_status_allow=tuple(settings.server_status_allow),
        health_url=None if daemon else settings.health_url,
        ready_url=None if daemon else settings.ready_url,
        health_allow=tuple(settings.health_allow),
        graceful_timeout=settings.graceful_timeout,
        maximum_requests=settings.maximum_requests,
        recycle=recycle,
        on_recycle=on_recycle,
        on_reload=on_reload,
    )
