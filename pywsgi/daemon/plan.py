"""Daemon mode planning, in the master: which daemon process group serves each application
mount (--mount-process-group, --process-group, --daemon), the server processes' mounts (those
mounts relayed: kind DAEMON) and the plan the master forks the groups' processes from."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.config.typed import Settings
from pywsgi.daemon.group import bind_group_socket
from pywsgi.errors import StartupError
from pywsgi.observe import errorlog
from pywsgi.site.mounts import Mount, MountKind

__all__ = ["EMBEDDED_GROUP", "DaemonPlan", "plan_daemon_mode"]

EMBEDDED_GROUP = "%{GLOBAL}"   # --mount-process-group /URL=%{GLOBAL}: that URL stays embedded

@dataclass
class DaemonPlan:
    groups: List[DaemonGroup]            # each with `processes` slots in the master
    daemon_mounts: List[Mount]           # what the daemon processes load and serve
    sockets: Dict[str, socket.socket] = field(default_factory=dict)
    directory: Optional[str] = None
    group_mounts: Dict[str, List[Mount]] = field(default_factory=dict)  # group name -> its mounts

    def mounts_for(self, group: Any) -> List[Mount]:
        return self.group_mounts.get(group.name, self.daemon_mounts)

    def script_paths(self, group: Any) -> List[str]:
        """The script files a group's processes load: touching one reloads the group."""
        return sorted({m.target for m in self.mounts_for(group)
                       if isinstance(m.target, str) and os.path.isfile(m.target)})

    def bind(self) -> None:
        import tempfile  # (here: only daemon mode needs it, and tempfile imports shutil)

        self.directory = tempfile.mkdtemp(prefix="pywsgi-")  # mode 0700: ours alone
        for group in self.groups:
            self.sockets[group.name] = bind_group_socket(group, self.directory)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        if self.directory:
            for group in self.groups:
                try:
                    os.unlink(group.socket_path)
                except OSError:
                    pass
            try:
                os.rmdir(self.directory)
            except OSError:
                pass


def plan_daemon_mode(settings: Settings, mounts: List[Mount]
                     ) -> Tuple[Settings, List[Mount], Optional[DaemonPlan]]:
    """Embedded mode: (settings, mounts, None).  Daemon mode: the server processes' settings,
    their mounts (application mounts relayed to their group) and the plan for the daemons.

    Each application mount (a script, a module, a mod_python handler, a directory of handler
    scripts) runs in the group named for its URL: the longest matching --mount-process-group
    URL, else --process-group, else embedded (in the server processes)."""
    groups: Dict[str, Any] = {}
    for group in settings.daemon_process:
        if group.name in groups:
            raise StartupError(f"--daemon-process {group.name}: the group is defined twice")
        groups[group.name] = group
    name = settings.process_group
    if settings.daemon and not name:
        name = "%s:%d" % (settings.host, settings.port)  # as mod_wsgi-express names it
    per_url = list(settings.mount_process_group)
    if not name and not per_url:
        if groups:
            errorlog.warning("daemon process groups defined but none selected with "
                             "--process-group: the application runs embedded")
        return settings, mounts, None
    if name and name not in groups:
        if not settings.daemon:
            raise StartupError(f"--process-group {name}: no such daemon process group (define it "
                               f"with --daemon-process {name}:processes=N,threads=M)")
        # mod_wsgi-express's group: --request-timeout and --interrupt-timeout are its options
        groups[name] = DaemonGroup(name, processes=settings.processes,
                                   threads=settings.threads,
                                   request_timeout=settings.request_timeout,
                                   interrupt_timeout=settings.interrupt_timeout)
    for url, group_name in per_url:
        if group_name != EMBEDDED_GROUP and group_name not in groups:
            raise StartupError(f"--mount-process-group {url or '/'}={group_name}: no such daemon "
                               f"process group (define it with --daemon-process "
                               f"{group_name}:processes=N,threads=M)")

    def group_for(prefix: str) -> str:
        best = None
        for url, group_name in per_url:
            if url == "" or prefix == url or prefix.startswith(url + "/"):
                if best is None or len(url) > len(best[0]):
                    best = (url, group_name)
        chosen = best[1] if best is not None else name
        return "" if chosen == EMBEDDED_GROUP else chosen

    # mount -> group name ("" embedded); a sub-mount made for access rules follows its parent
    assigned: Dict[int, str] = {}
    for mount in mounts:
        if mount.parent is None and mount.runs_in_daemon:
            assigned[id(mount)] = group_for(mount.prefix)
    for mount in mounts:
        if mount.parent is not None and id(mount.parent) in assigned:
            assigned[id(mount)] = assigned[id(mount.parent)]
    group_mounts: Dict[str, List[Mount]] = {}
    for mount in mounts:
        if assigned.get(id(mount)):
            group_mounts.setdefault(assigned[id(mount)], []).append(mount)
    if not group_mounts:
        if not name:  # every --mount-process-group said %{GLOBAL}: embedded mode after all
            return settings, mounts, None
        raise StartupError("daemon mode needs an application script or module to run in the "
                           "daemon process group")
    for other in groups:
        if other not in group_mounts:
            # an unused group would only load the application in processes nothing sends
            # requests to
            errorlog.warning(f"daemon process group {other} serves no mount (see --process-group "
                             f"and --mount-process-group): not started")
    used = [groups[group_name] for group_name in groups if group_name in group_mounts]
    for group in used:
        if group.python_home:
            errorlog.warning(f"daemon process group {group.name}: python-home only adds the "
                             f"environment's site-packages to sys.path; the daemon runs the "
                             f"server's interpreter")
    server_mounts = []
    for mount in mounts:
        group_name = assigned.get(id(mount))
        if group_name:
            mount = replace(mount, target=groups[group_name], kind=MountKind.DAEMON, wrap=None,
                            parent=None, subdirectory=None)
        elif id(mount) in assigned and (name or per_url):
            # an application left embedded beside relayed ones: it runs in no daemon group
            mount.extras.setdefault("mod_wsgi.process_group", "")
            mount.extras.setdefault("pywsgi.process_group", "")
        server_mounts.append(mount)
    threads = settings.server_threads or max(
        4, sum(group.processes * group.threads for group in used))
    settings = settings.replace(process_group=name, processes=settings.server_processes,
                                threads=threads)
    return settings, server_mounts, DaemonPlan(used, [m for ms in group_mounts.values()
                                                       for m in ms], group_mounts=group_mounts)
