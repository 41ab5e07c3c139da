"""Loading the planned mounts in a serving process (a server or a daemon process, after the
fork): each mount's application loaded once, with the extras the core puts in its environ."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from pywsgi.config.settings import application_group_for
from pywsgi.handlers import cgi
from pywsgi.site.mounts import Mount

__all__ = ["load_mounts", "mount_extras"]


class _Remount:
    """The parent mount's app, reached through a longer prefix made for access rules: it sees
    the parent's SCRIPT_NAME and the rest of the path as PATH_INFO, as if nothing was split."""

    pywsgi_static = False

    def __init__(self, app: Callable, parent_prefix: str) -> None:
        self.app = app
        self.parent_prefix = parent_prefix

    def __call__(self, environ, start_response):
        script_name = environ.get("SCRIPT_NAME", "")
        environ["PATH_INFO"] = script_name[len(self.parent_prefix):] + environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = self.parent_prefix
        return self.app(environ, start_response)


def mount_extras(settings: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    group = application_group_for(settings, prefix)
    process_group = settings.get("process_group", "")
    return {
        "mod_wsgi.application_group": group,
        "mod_wsgi.process_group": process_group,
        "pywsgi.application_group": group,
        "pywsgi.process_group": process_group,
        # how PATH_INFO treats %2F; a virtual host's mounts carry their host's (the core
        # decodes a request's path with the mode of the host it is for)
        "pywsgi.allow_encoded_slashes": settings.get("allow_encoded_slashes") or "off",
    }


def load_mounts(settings: Dict[str, Any], mounts: List[Mount]) -> List[tuple]:
    """(prefix, app, extras) for the core; raises loader.LoadError. A sub-mount made for access
    rules reuses its parent's loaded app (a script is executed once per process)."""
    callable_name = settings["callable_object"]
    loaded: Dict[int, Callable] = {}
    core_mounts = []
    for mount in sorted(mounts, key=lambda m: m.parent is not None):
        if mount.parent is not None:
            app: Callable = _Remount(loaded[id(mount.parent)], mount.parent.prefix)
        else:
            app = mount.load(callable_name)
        loaded[id(mount)] = app
        extras = mount_extras(settings, mount.group_prefix)
        extras.update(mount.extras)
        core_mounts.append((mount.prefix, app, extras))
    if any(_is_cgi(app) for _, app, _ in core_mounts):
        cgi.set_internal_router(core_mounts)  # CGI local redirects route through the mounts
    return core_mounts


def _is_cgi(app: Callable) -> bool:
    module = type(app).__module__
    return module == "pywsgi.handlers.cgi" or (isinstance(app, _Remount) and _is_cgi(app.app))
