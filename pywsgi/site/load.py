"""Loading the planned mounts in a serving process (a server or a daemon process, after the
fork): each mount's application loaded once, with the extras the core puts in its environ."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from pywsgi import loader
from pywsgi.config.settings import application_group_for
from pywsgi.config.typed import Settings
from pywsgi.handlers.static import StaticFiles
from pywsgi.modpython.handler import load_handler
from pywsgi.site.mounts import LoadedMount, Mount, MountKind
from pywsgi.site.routing import set_internal_router

__all__ = ["load_mounts", "load_app", "mount_extras"]


class _Remount:
    """The parent mount's app, reached through a longer prefix made for access rules: it sees
    the parent's SCRIPT_NAME and the rest of the path as PATH_INFO, as if nothing was split."""

    def __init__(self, app: Callable, parent_prefix: str) -> None:
        self.app = app
        self.parent_prefix = parent_prefix

    def __call__(self, environ, start_response):
        script_name = environ.get("SCRIPT_NAME", "")
        environ["PATH_INFO"] = script_name[len(self.parent_prefix):] + environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = self.parent_prefix
        return self.app(environ, start_response)


def mount_extras(settings: Settings, prefix: str) -> Dict[str, Any]:
    group = application_group_for(settings, prefix)
    process_group = settings.process_group
    return {
        "mod_wsgi.application_group": group,
        "mod_wsgi.process_group": process_group,
        "pywsgi.application_group": group,
        "pywsgi.process_group": process_group,
        # how PATH_INFO treats %2F; a virtual host's mounts carry their host's (the core
        # decodes a request's path with the mode of the host it is for)
        "pywsgi.allow_encoded_slashes": settings.allow_encoded_slashes,
    }


def load_app(mount: Mount, callable_name: str) -> Callable:
    """The mount's application, loaded in this process (raises LoadError): a mod_python
    handler, a script or module spec (loader.py), or the object itself; then its wrap."""
    if mount.kind is MountKind.MOD_PYTHON:
        app: Callable = load_handler(mount.target)
    elif isinstance(mount.target, str):
        app = loader.load(mount.target, callable_name)
    else:
        app = mount.target
    return mount.wrap(app) if mount.wrap is not None else app


def _core_kind(mount: Mount, app: Callable) -> MountKind:
    """The kind the core acts on. A sub-mount made for access rules serves through the parent's
    app (a Python call); an application that is itself a StaticFiles (a script whose
    `application` is one, or pywsgi.serve(StaticFiles(...))) is served from C, as
    docs/static-files.md promises."""
    if mount.parent is not None:
        return MountKind.APP
    if mount.kind is MountKind.APP and isinstance(app, StaticFiles):
        return MountKind.STATIC
    return mount.kind


def load_mounts(settings: Settings, mounts: List[Mount]) -> List[LoadedMount]:
    """The mounts for the core; raises LoadError. A sub-mount made for access rules reuses
    its parent's loaded app (a script is executed once per process)."""
    callable_name = settings.callable_object
    loaded: Dict[int, Callable] = {}
    core_mounts = []
    for mount in sorted(mounts, key=lambda m: m.parent is not None):
        if mount.parent is not None:
            app: Callable = _Remount(loaded[id(mount.parent)], mount.parent.prefix)
        else:
            app = load_app(mount, callable_name)
        loaded[id(mount)] = app
        extras = mount_extras(settings, mount.group_prefix)
        extras.update(mount.extras)
        core_mounts.append(LoadedMount(mount.prefix, app, extras, _core_kind(mount, app),
                                       mount.access, mount.virtual_host))
    if any(mount.kind is MountKind.CGI for mount in mounts):
        set_internal_router(core_mounts)  # CGI local redirects route through the mounts
    return core_mounts
