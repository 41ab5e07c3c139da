"""Mount planning, in the master before forking: the settings turned into one list of mounts,
each a URL prefix and what serves it (docs/ARCHITECTURE.md, "How mounts combine").

A WSGI script or module (SCRIPT, --mount-point, --script-alias), a mod_python handler
(--python-handler), static files (--document-root at the root, --url-alias), a handler-scripts
directory (--handler-scripts), CGI (--cgi-alias, --cgi-script), access rules (--access) on the
mount at a prefix or on a sub-mount made for them, and name-based virtual hosts, each planned as
a server of its own. Every path is checked now, so a mistake is a startup error (exit 2).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from pywsgi.config.settings import application_group_for
from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError
from pywsgi.handlers import welcome
from pywsgi.handlers.scripts import CGIByExtension, DocumentRootFirst, HandlerScripts
from pywsgi.handlers.static import StaticFiles
from pywsgi.modpython.options import plan_mounts as plan_handler_mounts
from pywsgi.modpython.options import set_handler_mounts
from pywsgi.site.mounts import Mount, MountKind
from pywsgi.targets import is_handler_spec, is_module_spec

__all__ = ["plan_mounts", "serves_only_the_welcome_page"]


def _check_target(target: str, what: str) -> str:
    """A script path must exist and be a file now (before forking); module specs load later."""
    if is_module_spec(target):
        return target
    if not os.path.exists(target):
        raise StartupError(f"{what}{target}: no such file")
    if not os.path.isfile(target):
        raise StartupError(f"{what}{target}: not a file")
    if not os.access(target, os.R_OK):
        raise StartupError(f"{what}{target}: not readable (permission denied)")
    return os.path.abspath(target)


def _target_kind(target: str) -> MountKind:
    """A script or module spec is an application; 'module::handler' that names no file is a
    mod_python handler (pywsgi myhandler::handler, --script-alias /h=myhandler::handler)."""
    if "::" in target and not os.path.exists(target) and is_handler_spec(target):
        return MountKind.MOD_PYTHON
    return MountKind.APP


def plan_mounts(settings: Settings, script: Optional[str] = None,
                app: Optional[Callable] = None) -> List[Mount]:
    """The mounts to serve: SCRIPT (or app) at mount_point, plus every script_alias and the
    mounts of the other settings; with virtual hosts, each host's.

    Nothing given: the built-in welcome page at the root.
    """
    if script is not None and app is not None:
        raise StartupError("give either a script or an application object, not both")
    if settings.virtual_host:
        mounts = _plan_virtual_hosts(settings, script, app)
    else:
        mounts = _plan_server(settings, script, app)
    # where req.internal_redirect goes when the server does not route internal redirects
    set_handler_mounts([mount for mount in mounts
                        if mount.kind is MountKind.MOD_PYTHON and mount.parent is None])
    return mounts


def _plan_server(settings: Settings, script: Optional[str],
                 app: Optional[Callable]) -> List[Mount]:
    mounts: List[Mount] = []
    if app is not None:
        if not callable(app):
            raise StartupError(f"the application must be callable, got {type(app).__name__}")
        mounts.append(Mount(settings.mount_point, app, getattr(app, "__name__", repr(app))))
    elif script is not None:
        mounts.append(Mount(settings.mount_point, _check_target(script, ""), script,
                            _target_kind(script)))
    for url, target in settings.script_alias:
        mounts.append(Mount(url, _check_target(target, f"--script-alias {url or '/'}: "), target,
                            _target_kind(target)))
    mounts.extend(plan_handler_mounts(settings))  # and PythonPath/PythonOption
    mounts.extend(_file_mounts(settings))
    seen: Dict[str, str] = {}
    for mount in mounts:
        if mount.prefix in seen:
            raise StartupError(f"two applications mounted at {mount.prefix or '/'!r}: "
                               f"{seen[mount.prefix]} and {mount.label}")
        seen[mount.prefix] = mount.label
    if settings.document_root:
        _mount_document_root(settings, mounts)
    if not mounts:
        mounts.append(Mount("", welcome.application, "welcome page"))
    for url, rules in settings.access:
        _attach_access(settings, mounts, url, rules)
    return mounts


# ------------------------------------------------------------------ virtual hosts (Apache import)

# Settings whose values a virtual host adds to the main server's (Apache merges the main
# server's Alias, ScriptAlias, WSGIScriptAlias, <Location> ... into every virtual host; the
# virtual host's own entry wins for the same URL).
_VHOST_MERGED = ("url_alias", "script_alias", "cgi_alias", "python_handler", "access",
                 "mount_process_group")


def _plan_virtual_hosts(settings: Settings, script: Optional[str],
                        app: Optional[Callable]) -> List[Mount]:
    """Name-based virtual hosts: each host's mounts are planned as a server of its own that
    inherits the main server's settings; every mount is tagged (Mount.virtual_host: index, host
    names) and the core routes by the request's Host to that host's mounts, or to the
    first host's when no name matches (Apache's default virtual host)."""
    mounts: List[Mount] = []
    for index, host in enumerate(settings.virtual_host):
        changes: Dict[str, Any] = {"virtual_host": []}
        for name, value in host.items():
            if name in _VHOST_MERGED:
                own = {item[0] for item in value}
                inherited = [item for item in getattr(settings, name) if item[0] not in own]
                changes[name] = inherited + list(value)
            elif name != "server_alias":
                changes[name] = value
        sub = settings.replace(**changes)
        if sub.process_group != settings.process_group:
            raise StartupError(f"virtual host {host.get('server_name') or index + 1}: a daemon "
                               f"process group of its own ({sub.process_group or 'embedded'}) "
                               f"is not supported yet; use one WSGIProcessGroup (--process-group) "
                               f"for all")
        names = tuple(([host["server_name"].lower()] if host.get("server_name") else [])
                      + list(host.get("server_alias") or ()))
        for mount in _plan_server(sub, script, app):
            mount.virtual_host = (index, names)
            mount.extras["pywsgi.allow_encoded_slashes"] = sub.allow_encoded_slashes
            group = application_group_for(sub, mount.group_prefix)
            mount.extras["mod_wsgi.application_group"] = group
            mount.extras["pywsgi.application_group"] = group
            mount.label += f" (virtual host {names[0] if names else index + 1})"
            mounts.append(mount)
    return mounts


# ------------------------------------------------------------------ static, handlers, CGI

def _static_app(settings: Settings, path: str, what: str) -> Tuple[Callable, MountKind]:
    """StaticFiles for a directory or a file (STATIC); with --handler-scripts a directory's
    *.wsgi files run as applications, with --cgi-extension its CGI files run (HandlerScripts or
    CGIByExtension in front of the StaticFiles: HANDLER_SCRIPTS)."""
    if not os.path.exists(path):
        raise StartupError(f"{what}{path}: no such file or directory")
    try:
        files = StaticFiles(path, index=(settings.directory_index,),
                            follow_symlinks=settings.follow_symlinks,
                            precompressed=settings.precompressed,
                            cache_control=settings.cache_control,
                            is_file=os.path.isfile(path))
    except ValueError as exc:
        raise StartupError(f"{what}{exc}") from None
    if not os.path.isdir(path) or not (settings.handler_scripts or settings.cgi_extension):
        return files, MountKind.STATIC
    if settings.handler_scripts:
        files = HandlerScripts(path, files, callable_name=settings.callable_object,
                               extensions=settings.handler_extension,
                               follow_symlinks=settings.follow_symlinks)
    if settings.cgi_extension:  # AddHandler cgi-script .cgi
        files = CGIByExtension(path, files, _cgi_app(settings, path, what),
                               extensions=settings.cgi_extension,
                               follow_symlinks=settings.follow_symlinks)
    return files, MountKind.HANDLER_SCRIPTS


def _cgi_limits(settings: Settings):
    # handlers.cgi (and subprocess) only for a server that runs CGI programs
    from pywsgi.handlers.cgi import shared_limits

    return shared_limits(settings.cgi_timeout, settings.cgi_max_processes)


def _cgi_app(settings: Settings, path: str, what: str) -> Callable:
    if not os.path.exists(path):
        raise StartupError(f"{what}{path}: no such file or directory")
    if not os.path.isdir(path) and not os.path.isfile(path):
        raise StartupError(f"{what}{path}: not a directory or a file")
    from pywsgi.handlers.cgi import CGIDirectory

    return CGIDirectory(path, _cgi_limits(settings), document_root=settings.document_root,
                        follow_symlinks=settings.follow_symlinks)


def _cgi_directory(settings: Settings, path: str, what: str) -> Tuple[Callable, MountKind]:
    return _cgi_app(settings, path, what), MountKind.CGI


def _subdirectory_factory(settings: Settings, path: str, make) -> Optional[Callable]:
    """For a directory mount: (app, kind) for a subdirectory (access rules below the mount)."""
    if not os.path.isdir(path):
        return None

    def for_subdirectory(url: str, rel_url: str) -> Tuple[Callable, MountKind]:
        sub = os.path.join(path, *[seg for seg in rel_url.split("/") if seg])
        what = f"--access {url}: "
        if not os.path.isdir(sub):
            raise StartupError(f"{what}{sub}: no such directory")
        real_root = os.path.realpath(path)
        real = os.path.realpath(sub)
        if not settings.follow_symlinks and not real.startswith(real_root.rstrip("/") + "/"):
            raise StartupError(f"{what}{sub} leads out of {path}")
        return make(settings, sub, what)
    return for_subdirectory


def _file_mounts(settings: Settings) -> List[Mount]:
    """Mounts for --cgi-script, --cgi-alias and --url-alias (the document root comes later)."""
    mounts: List[Mount] = []
    for url, path in settings.cgi_script:
        url = settings.mount_point if url is None else url
        what = f"--cgi-script {url or '/'}: "
        if not os.path.isfile(path):
            raise StartupError(f"{what}{path}: " + ("not a file" if os.path.exists(path)
                                                     else "no such file"))
        from pywsgi.handlers.cgi import CGIScript

        app = CGIScript(path, _cgi_limits(settings), callable_name=settings.callable_object,
                        document_root=settings.document_root)
        mounts.append(Mount(url, app, f"CGI script {path}", MountKind.CGI))
    for url, path in settings.cgi_alias:
        app, kind = _cgi_directory(settings, path, f"--cgi-alias {url or '/'}: ")
        mounts.append(Mount(url, app, f"CGI {path}", kind,
                            subdirectory=_subdirectory_factory(settings, path, _cgi_directory)))
    for url, path in settings.url_alias:
        app, kind = _static_app(settings, path, f"--url-alias {url or '/'}: ")
        mounts.append(Mount(url, app, f"files {path}", kind,
                            subdirectory=_subdirectory_factory(settings, path, _static_app)))
    return mounts


def _mount_document_root(settings: Settings, mounts: List[Mount]) -> None:
    """The document root is the '/' mount; explicit mounts win by longest prefix. When an
    application is mounted at '/' too, existing files win over it (mod_wsgi-express)."""
    root = settings.document_root
    what = "--document-root: "
    if not os.path.isdir(root):
        raise StartupError(f"{what}{root}: " + ("not a directory" if os.path.exists(root)
                                                 else "no such directory"))
    files, kind = _static_app(settings, root, what)
    for mount in mounts:
        if mount.prefix == "":

            def in_front(app, files=files):
                return DocumentRootFirst(files, app, root, (settings.directory_index,),
                                         follow_symlinks=settings.follow_symlinks)
            mount.wrap = in_front
            mount.label += f" (behind the files of {root})"
            return
    mounts.append(Mount("", files, f"document root {root}", kind,
                        subdirectory=_subdirectory_factory(settings, root, _static_app)))


def _attach_access(settings: Settings, mounts: List[Mount], url: str, rules) -> None:
    """Access rules for the URL prefix `url`: on the mount at that prefix, or on a new mount
    made for it below the mount that serves it (longest prefix wins, so the rules apply to
    that part of the URL space only)."""
    for mount in mounts:
        if mount.prefix == url:
            mount.access = rules
            return
    enclosing = None
    for mount in mounts:
        if mount.prefix == "" or url.startswith(mount.prefix + "/"):
            if enclosing is None or len(mount.prefix) > len(enclosing.prefix):
                enclosing = mount
    if enclosing is None:
        raise StartupError(f"--access {url}: no mount serves this URL "
                           f"(mounts: {', '.join(m.prefix or '/' for m in mounts)})")
    rel_url = url[len(enclosing.prefix):]
    if enclosing.subdirectory is not None and enclosing.wrap is None:
        app, kind = enclosing.subdirectory(url, rel_url)
        sub = Mount(url, app, f"{enclosing.label}{rel_url}", kind)
    else:
        sub = Mount(url, enclosing.target, f"{enclosing.label} (at {url})", enclosing.kind,
                    parent=enclosing)
    sub.access = rules
    mounts.append(sub)


def serves_only_the_welcome_page(mounts: List[Mount]) -> bool:
    return bool(mounts) and all(mount.target is welcome.application for mount in mounts)
