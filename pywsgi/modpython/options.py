"""The mod_python settings of this process: PythonPath, PythonOption, the shim and the
--python-handler mounts. Set by the mount planner in the master before it forks, so every process
that loads a handler (a server process, or a daemon process) sees the same values."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List

from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError
from pywsgi.site.mounts import Mount, MountKind
from pywsgi.site.routing import Router

__all__ = ["mod_python_settings", "install_shim", "plan_mounts", "set_handler_mounts",
           "apply_python_path"]

# handler_routes: the handler mounts (target 'module::handler'), for req.internal_redirect when
# the server does not route internal redirects itself
mod_python_settings: Dict[str, Any] = {"python_path": [], "python_option": [], "shim": False,
                                       "limit_request_body": 0, "handler_routes": Router([])}


def install_shim() -> None:
    """Make ``import mod_python.apache`` / ``mod_python.util`` resolve to pywsgi's modules (the
    directory pywsgi/compat goes first on sys.path). Opt-in: a real mod_python must not be
    shadowed unless asked for."""
    # pywsgi/compat, beside this package (pywsgi/modpython)
    compat = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat")
    if compat not in sys.path:
        sys.path.insert(0, compat)


def plan_mounts(settings: Settings) -> List[Any]:
    """The master's hook: remember the mod_python settings and give one mount per
    --python-handler (target 'module::handler', loaded in the serving process)."""
    mod_python_settings["python_path"] = list(settings.python_path)
    mod_python_settings["python_option"] = list(settings.python_option)
    mod_python_settings["shim"] = settings.mod_python_shim
    mod_python_settings["limit_request_body"] = settings.limit_request_body
    if mod_python_settings["shim"]:
        install_shim()  # now, so every process (forked later) has it: WSGI scripts use it too
    for directory in mod_python_settings["python_path"]:
        if not os.path.isdir(directory):
            raise StartupError(f"--python-path {directory}: no such directory")
    mounts = []
    for url, module, handler in settings.python_handler:
        url = settings.mount_point if url is None else url
        spec = f"{module}::{handler}"
        mounts.append(Mount(url, spec, f"mod_python handler {spec}", MountKind.MOD_PYTHON))
    return mounts


def set_handler_mounts(mounts: List[Mount]) -> None:
    """The planner's last word: the handler mounts of the whole server (every virtual host's)."""
    mod_python_settings["handler_routes"] = Router(mounts)


def apply_python_path() -> None:
    for directory in reversed(mod_python_settings["python_path"]):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    if mod_python_settings["shim"]:
        install_shim()
