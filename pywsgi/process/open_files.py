"""The open-file limit and --max-clients: every client connection is a descriptor, so the master
raises the soft RLIMIT_NOFILE to the hard one before forking, and --max-clients is what that
allows, less a reserve for everything else a process opens (docs/security.md)."""
from __future__ import annotations

import resource
from typing import Optional

from pywsgi.config.typed import Settings
from pywsgi.daemon.plan import DaemonPlan
from pywsgi.observe import errorlog

__all__ = ["raise_open_file_limit", "descriptor_reserve", "settle_max_clients"]

# Descriptors a server process keeps for what is not a client connection: stdio, the listening
# sockets (up to 16), the poller and its wake pipe, the pipe to the master, the error and access
# logs, Python's imports, the application's own files and sockets.  docs/security.md.
FD_RESERVE = 128
STATIC_ROOT_FDS = 48   # files csrc/static.c keeps open per static-files root (CACHE_SLOTS)


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the children inherit it): every client
    connection is a descriptor, and a soft limit of 1024 is a common default far below what
    the system allows.  Returns the soft limit now in force (-1: unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    if soft == hard or soft == infinity:
        return soft
    # macOS refuses an unlimited soft value (OPEN_MAX): then the usual ceilings below it
    wants = [] if hard == infinity else [hard]
    wants += [n for n in (1 << 20, 65536, 10240) if hard == infinity or n < hard]
    for want in wants:
        if want <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            continue
        errorlog.debug(f"open-file limit raised from {soft} to {want}")
        return want
    return soft


def descriptor_reserve(settings: Settings, plan: Optional[DaemonPlan]) -> int:
    """Descriptors kept out of --max-clients: FD_RESERVE, the open-file cache of each static
    files root, and the connections to daemon process groups (the reactor relays up to 2 per
    daemon thread at once; each relay thread keeps one per group)."""
    reserve = FD_RESERVE
    roots = (1 if settings.document_root else 0) + len(settings.url_alias)
    roots += sum((1 if host.get("document_root") else 0) + len(host.get("url_alias") or ())
                 for host in settings.virtual_host)
    reserve += STATIC_ROOT_FDS * roots
    if plan is not None:
        for group in plan.groups:
            reserve += 2 * group.processes * group.threads + 2 * settings.threads
    return reserve


def settle_max_clients(settings: Settings, plan: Optional[DaemonPlan]) -> Settings:
    """--max-clients as the open-file limit allows: by default all it allows, less the reserve;
    a larger explicit value is lowered to that, with a warning (the connections beyond it would
    only meet EMFILE)."""
    soft = raise_open_file_limit()
    if soft < 0:
        return settings  # no limit on descriptors: only an explicit --max-clients caps
    reserve = descriptor_reserve(settings, plan)
    allowed = max(soft - reserve, soft // 4, 1)
    wanted = settings.max_clients
    if wanted is None:
        errorlog.debug(f"--max-clients {allowed} (open-file limit {soft}, {reserve} "
                       f"descriptors kept for other uses)")
        return settings.replace(max_clients=allowed)
    if wanted > allowed:
        errorlog.warning(f"--max-clients {wanted} is more than the open-file limit allows "
                         f"({soft} descriptors per process, {reserve} of them kept for "
                         f"listening sockets, logs, files and daemon connections): using "
                         f"{allowed}; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) "
                         f"to allow more")
        return settings.replace(max_clients=allowed)
    return settings
