"""Handler scripts: every ``*.wsgi`` file under a served directory is an application.

This is the seed's ``.htaccess`` row — Apache's ``AddHandler wsgi-script .wsgi`` (or
``SetHandler wsgi-script``) in a ``<Directory>`` with ``Options ExecCGI``. With
``--handler-scripts``, the document root and every ``--url-alias`` directory are served by a
``HandlerScripts`` app:

* ``/dir/app.wsgi/more`` runs ``DIR/dir/app.wsgi``'s ``application`` with
  SCRIPT_NAME = mount prefix + ``/dir/app.wsgi`` and PATH_INFO = ``/more``;
* any other path is a static file, answered by the directory's ``StaticFiles`` app (its plain
  WSGI fallback, in Python: the core's C static path only serves mounts whose app *is* a
  StaticFiles — see docs/static-cgi-handlers.md).

Scripts are loaded on first use with ``pywsgi.loader.load_script`` (mod_wsgi's module naming), and
loaded again when the file's modification time changes (mod_wsgi's script reloading). A script
that fails to load answers 500 with an error-log line; the server lives on. The path rules are
the static files' rules: no ``..``, no NUL, and a script whose real path leaves the root (a
symbolic link leading out) is refused with 403 unless ``--follow-symlinks``.
"""
from __future__ import annotations

import os
import stat
import threading
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from pywsgi.errors import LoadError
from pywsgi.loader import load_script
from pywsgi.observe import errorlog

__all__ = ["HandlerScripts", "ScriptCache", "DocumentRootFirst"]

DEFAULT_EXTENSIONS = (".wsgi",)


def _simple(start_response, status: str, text: str):
    body = f"{status}\n{text}\n".encode() if text else f"{status}\n".encode("ascii")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


class ScriptCache:
    """Loaded handler scripts by absolute path, reloaded when the file's mtime changes."""

    def __init__(self, callable_name: str = "application") -> None:
        self.callable_name = callable_name
        self._lock = threading.Lock()
        self._path_locks: Dict[str, threading.Lock] = {}
        # path -> (mtime_ns, size, app or None, load error text or None)
        self._entries: Dict[str, Tuple[int, int, Optional[Callable], Optional[str]]] = {}

    def get(self, path: str, st: os.stat_result) -> Tuple[Optional[Callable], Optional[str]]:
        """(app, None), or (None, why it cannot load) for the file as it is now."""
        key = (st.st_mtime_ns, st.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[:2] == key:
            return entry[2], entry[3]
        with self._lock:
            path_lock = self._path_locks.setdefault(path, threading.Lock())
        with path_lock:  # one thread loads; the others wait for its result
            entry = self._entries.get(path)
            if entry is not None and entry[:2] == key:
                return entry[2], entry[3]
            reloading = entry is not None
            try:
                app: Optional[Callable] = load_script(path, self.callable_name)
                error = None
                errorlog.info(f"{'reloaded' if reloading else 'loaded'} handler script {path}")
            except LoadError as exc:
                app, error = None, str(exc)
            self._entries[path] = (key[0], key[1], app, error)
            return app, error


class HandlerScripts:
    """A directory whose ``*.wsgi`` files run as applications, its other files served static."""

    def __init__(self, path: str, static_files: Optional[Callable], *,
                 callable_name: str = "application",
                 extensions: Sequence[str] = DEFAULT_EXTENSIONS,
                 follow_symlinks: bool = False,
                 cache: Optional[ScriptCache] = None) -> None:
        self.root = os.path.realpath(path)
        if not os.path.isdir(self.root):
            raise ValueError(f"handler scripts: {path!r} is not a directory")
        self.static_files = static_files
        self.extensions = tuple(ext if ext.startswith(".") else "." + ext for ext in extensions)
        self.follow_symlinks = follow_symlinks
        self.scripts = cache or ScriptCache(callable_name)

    def __repr__(self) -> str:
        return f"<HandlerScripts {self.root}/ {' '.join(self.extensions)}>"

    def find_script(self, path_info: str):
        """(file, stat, script part, rest of the path) for the first segment of PATH_INFO that
        is a handler script; None when the path holds none; an int status when it may not be
        used (403: a symbolic link out of the root, 400: a forbidden segment)."""
        if not path_info.startswith("/"):
            return None
        segments = path_info.split("/")[1:]
        current = self.root
        for index, segment in enumerate(segments):
            if segment in ("..",) or "\x00" in segment or "\\" in segment:
                return 400
            if segment in ("", "."):
                return None  # the core normalises paths; an empty segment ends the walk
            current = os.path.join(current, segment)
            try:
                st = os.stat(current)
            except OSError:
                return None  # nothing there: the static files answer 404
            if stat.S_ISDIR(st.st_mode):
                continue
            if not segment.endswith(self.extensions) or not stat.S_ISREG(st.st_mode):
                return None  # a plain file (with or without more path): static
            if not self.follow_symlinks:
                real = os.path.realpath(current)
                if not real.startswith(self.root.rstrip("/") + "/"):
                    return 403
            script_part = "/" + "/".join(segments[:index + 1])
            rest = "/" + "/".join(segments[index + 1:]) if index + 1 < len(segments) else ""
            return current, st, script_part, rest
        return None

    def __call__(self, environ: Dict[str, Any], start_response):
        found = self.find_script(environ.get("PATH_INFO", ""))
        if found is None:
            if self.static_files is None:
                return _simple(start_response, "404 Not Found", "")
            return self.static_files(environ, start_response)
        if isinstance(found, int):
            errorlog.info(f"[client {environ.get('REMOTE_ADDR')}] "
                          f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}: "
                          f"handler script refused ({found})")
            return _simple(start_response,
                           "403 Forbidden" if found == 403 else "400 Bad Request", "")
        filename, st, script_part, rest = found
        app, error = self.scripts.get(filename, st)
        if app is None:
            errorlog.error(f"[client {environ.get('REMOTE_ADDR')}] cannot load handler script "
                           f"{filename}: {error}")
            return _simple(start_response, "500 Internal Server Error", "")
        mount_prefix = environ.get("SCRIPT_NAME", "")
        script_name = mount_prefix + script_part
        environ["SCRIPT_NAME"] = script_name
        environ["PATH_INFO"] = rest
        environ["SCRIPT_FILENAME"] = filename
        # mod_wsgi's default application group is per script: 'SERVER[:PORT]|SCRIPT_NAME'.
        for key in ("mod_wsgi.application_group", "pywsgi.application_group"):
            group = environ.get(key)
            if isinstance(group, str) and group.endswith("|" + mount_prefix):
                environ[key] = group[:len(group) - len(mount_prefix)] + script_name
        return app(environ, start_response)


class DocumentRootFirst:
    """An application mounted at '/' behind the document root: a request naming an existing
    file (or a directory holding an index file, or a handler script) is answered from the
    document root, every other request goes to the application — mod_wsgi-express's rule for
    ``--document-root`` with an application at '/'. The files go through the static app's
    Python fallback here, since the mount's app is not the StaticFiles itself."""

    def __init__(self, files: Callable, app: Callable, root: str, index: Sequence[str], *,
                 follow_symlinks: bool = False) -> None:
        self.files = files
        self.app = app
        self.root = os.path.realpath(root)
        self.index = tuple(index)
        self.follow_symlinks = follow_symlinks

    def __repr__(self) -> str:
        return f"<DocumentRootFirst {self.root}/ then {self.app!r}>"

    def has_file_for(self, path_info: str) -> bool:
        if isinstance(self.files, HandlerScripts) and self.files.find_script(path_info) is not None:
            return True
        if not path_info.startswith("/") or "\x00" in path_info:
            return False
        segments = [seg for seg in path_info.split("/") if seg]
        if ".." in segments:
            return False
        full = os.path.join(self.root, *segments)
        if not self.follow_symlinks:
            real = os.path.realpath(full)
            if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
                return False
        if os.path.isfile(full):
            return True
        return os.path.isdir(full) and any(os.path.isfile(os.path.join(full, name))
                                           for name in self.index)

    def __call__(self, environ: Dict[str, Any], start_response):
        if self.has_file_for(environ.get("PATH_INFO", "")):
            return self.files(environ, start_response)
        return self.app(environ, start_response)


class CGIByExtension(HandlerScripts):
    """``AddHandler cgi-script .cgi`` with ``Options ExecCGI``: under a served directory, files
    ending in one of `extensions` run as CGI programs (through `cgi_app`, a CGIDirectory on the
    same directory, which finds the same file in PATH_INFO); every other path goes to `inner`
    (the directory's static files, or its handler scripts)."""

    def __init__(self, path: str, inner: Callable, cgi_app: Callable, *,
                 extensions: Sequence[str], follow_symlinks: bool = False) -> None:
        super().__init__(path, inner, extensions=extensions, follow_symlinks=follow_symlinks)
        self.cgi_app = cgi_app

    def __repr__(self) -> str:
        return f"<CGIByExtension {self.root}/ {' '.join(self.extensions)}>"

    def __call__(self, environ: Dict[str, Any], start_response):
        found = self.find_script(environ.get("PATH_INFO", ""))
        if found is None:
            return self.static_files(environ, start_response)
        if isinstance(found, int):
            return _simple(start_response,
                           "403 Forbidden" if found == 403 else "400 Bad Request", "")
        return self.cgi_app(environ, start_response)
