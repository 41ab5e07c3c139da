"""A mount: a URL prefix and what serves it. The planner (plan.py) makes one per mount and
decides its kind; a serving process loads it (load.py) into a ``LoadedMount``, the
(prefix, app, extras, kind, access, virtual_host) the core and the Python routers (routing.py)
take.

This module imports nothing of pywsgi: every layer may name a mount's kind.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

__all__ = ["MountKind", "Mount", "LoadedMount", "DAEMON_MOUNT_BODY", "VirtualHostTag"]

# A mount of a name-based virtual host: the host's index (0: the default host) and the host
# names it answers to, in lower case.
VirtualHostTag = Tuple[int, Tuple[str, ...]]


class MountKind(str, enum.Enum):
    """What serves a mount, decided by the planner (plan.py, daemon/plan.py). The core serves
    STATIC from C and relays DAEMON in C; it calls the app of every other kind."""

    APP = "app"                          # a WSGI script, 'pkg.module:app', or an app object
    MOD_PYTHON = "mod_python"            # a mod_python handler 'module::handler'
    HANDLER_SCRIPTS = "handler_scripts"  # a directory whose *.wsgi (or CGI) files run
    STATIC = "static"                    # a StaticFiles, served by the core in C
    CGI = "cgi"                          # CGI programs, a process per request
    DAEMON = "daemon"                    # relayed to a daemon process group


@dataclass
class Mount:
    prefix: str                          # '' (root) or '/a/b'
    target: Union[str, Callable, Any]    # script path, 'pkg.module:app', 'module::handler',
    #                                      the app itself, or (DAEMON) a DaemonGroup
    label: str = ""                      # for log lines
    kind: MountKind = MountKind.APP
    # keys added to the mount's environ
    extras: Dict[str, Any] = field(default_factory=dict)
    # Apache access rules (pywsgi.handlers.access.AccessRules), checked first; None: none
    access: Any = None
    # a name-based virtual host's mount: (the host's index, its names in lower case)
    virtual_host: Optional[VirtualHostTag] = None
    # applied to the loaded app (the document root in front of an app mounted at '/')
    wrap: Optional[Callable[[Callable], Callable]] = None
    # a mount made for access rules below another one: serves through the parent's app
    parent: Optional[Mount] = None
    # for a directory-backed mount (static, handler scripts, CGI): the same kind of app for a
    # subdirectory, given the URL and its path below the prefix ('/files/private', '/private')
    subdirectory: Optional[Callable[[str, str], tuple[Callable, MountKind]]] = None

    @property
    def group_prefix(self) -> str:
        """The prefix that names the application group (the parent's, for a sub-mount)."""
        return self.parent.group_prefix if self.parent is not None else self.prefix

    @property
    def runs_in_daemon(self) -> bool:
        """Whether daemon mode runs it in a daemon process group: application code that a
        daemon process can load by itself (a script or module, a mod_python handler, a
        directory of handler scripts); not static files, CGI, or an app object given to
        pywsgi.serve()."""
        if self.kind is MountKind.APP:
            return isinstance(self.target, str)
        return self.kind in (MountKind.MOD_PYTHON, MountKind.HANDLER_SCRIPTS)


DAEMON_MOUNT_BODY = b"This URL is served by a pywsgi daemon process group.\n"


def _daemon_mount(environ, start_response) -> List[bytes]:
    """A DAEMON mount reached from Python (an internal redirect): only the core relays."""
    start_response("502 Bad Gateway", [("Content-Type", "text/plain"),
                                       ("Content-Length", str(len(DAEMON_MOUNT_BODY)))])
    return [DAEMON_MOUNT_BODY]


class LoadedMount(NamedTuple):
    """A mount as a serving process has it: what the core's serve() takes, and what the
    Python routers (CGI and mod_python internal redirects) route to."""

    prefix: str
    app: Any                  # the WSGI app; STATIC: the StaticFiles; DAEMON: the DaemonGroup
    extras: Dict[str, Any]    # merged into the environ
    kind: MountKind
    access: Any = None        # AccessRules checked before anything else (403); None: none
    virtual_host: Optional[VirtualHostTag] = None   # None: not a virtual host's

    @property
    def wsgi_app(self) -> Callable:
        """What Python calls to serve a request here (a StaticFiles answers through its WSGI
        fallback; a daemon group's mount answers 502, as only the core relays)."""
        return _daemon_mount if self.kind is MountKind.DAEMON else self.app
