"""Loading WSGI applications the way mod_wsgi does.

A script (``myapp.wsgi``, ``app.py`` — any extension) is compiled and executed as a fresh module
named ``_mod_wsgi_`` + the MD5 hex digest of its absolute path, with ``__file__`` set, registered in
``sys.modules`` — exactly mod_wsgi's naming, so code that looks itself up there keeps working.

sys.path: like mod_wsgi, the script's own directory is NOT added (a script importing its
neighbours must add its directory itself, as under Apache). Like mod_wsgi-express, whose working
directory is importable, the directory pywsgi was started in is put on sys.path; that also makes
``pywsgi pkg.module:app`` find packages in the current directory.

Every failure raises ``LoadError`` whose message is one line that says what went wrong and where.
"""
from __future__ import annotations

try:
    # CPython's own small MD5 (the name is all it is used for): hashlib would load OpenSSL's
    # libcrypto, about 4 MB of resident memory in every server process.
    from _md5 import md5 as _md5
except ImportError:  # an interpreter built without it
    from hashlib import md5 as _md5
import importlib
import os
import sys
import traceback
import types
from typing import Any, Callable, Optional, Tuple

from pywsgi.errors import LoadError
from pywsgi.targets import is_module_spec

__all__ = ["LoadError", "load_script", "load_module_spec", "load", "is_module_spec",
           "module_name_for", "add_working_directory_to_path", "import_hint"]


def module_name_for(abspath: str) -> str:
    """mod_wsgi's module name for a script: '_mod_wsgi_' + md5(absolute path)."""
    return "_mod_wsgi_" + _md5(abspath.encode("utf-8", "surrogateescape")).hexdigest()


def add_working_directory_to_path(directory: Optional[str] = None) -> None:
    directory = os.path.abspath(directory or os.getcwd())
    if directory not in sys.path and "" not in sys.path:
        sys.path.insert(0, directory)


def _library_directories() -> Tuple[str, ...]:
    """Where code that is not the user's lives: the standard library, site-packages, pywsgi."""
    import sysconfig
    paths = sysconfig.get_paths()
    directories = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")
                   if paths.get(key)}
    try:
        import site
        directories.update(site.getsitepackages())
        directories.add(site.getusersitepackages())
    except (AttributeError, ImportError):  # a virtualenv's old site.py, -S
        pass
    directories.add(os.path.dirname(os.path.abspath(__file__)))
    return tuple(os.path.join(os.path.realpath(d), "") for d in directories if d)


def _is_library_file(filename: str, libraries: Tuple[str, ...]) -> bool:
    return os.path.realpath(filename).startswith(libraries)


def _where(exc: BaseException, prefer_file: Optional[str] = None) -> str:
    """'file:line' of the innermost frame in the user's code: the script itself (prefer_file)
    or any file outside the standard library, site-packages and pywsgi -- so a KeyError in a
    Django settings.py imported through importlib is reported there, not at
    <frozen importlib._bootstrap> or <frozen os>. Failing that, the innermost frame in a real
    file, then the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    libraries = _library_directories()
    real = [f for f in frames if not f.filename.startswith("<")]
    users = [f for f in real
             if f.filename == prefer_file or not _is_library_file(f.filename, libraries)]
    frame = (users or real or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described + import_hint(exc)


def import_hint(exc: BaseException) -> str:
    """What to do about a failed import pywsgi can answer: mod_python exists only inside Apache,
    or, opt-in, as pywsgi's shim (pywsgi/compat)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name == "mod_python":
        return (" (give --mod-python-shim to make pywsgi's mod_python.apache and "
                "mod_python.util importable)")
    return ""


def _check_callable(app: Any, what: str, name: str) -> Callable:
    if not callable(app):
        raise LoadError(f"{what}: '{name}' is not callable (got {type(app).__name__}); "
                        f"a WSGI application is a callable taking (environ, start_response)")
    return app


def _get_attribute(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def load_script(path: str, callable_name: str = "application") -> Callable:
    """Execute a WSGI script file as a module, mod_wsgi style, and return its callable."""
    abspath = os.path.abspath(path)
    if not os.path.exists(abspath):
        raise LoadError(f"{path}: no such file")
    if not os.path.isfile(abspath):
        raise LoadError(f"{path}: not a file")
    try:
        with open(abspath, "rb") as f:
            source = f.read()
        mtime = os.path.getmtime(abspath)
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None

    try:
        # Bytes, so a PEP 263 coding declaration is honoured, as mod_wsgi's parser does.
        code = compile(source, abspath, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = f":{exc.lineno}" if exc.lineno else ""
        raise LoadError(f"{exc.filename or abspath}{line}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise LoadError(f"{abspath}: cannot compile: {exc}") from None

    add_working_directory_to_path()
    name = module_name_for(abspath)
    module = types.ModuleType(name)
    module.__file__ = abspath
    module.__mtime__ = mtime  # mod_wsgi records it for script reloading
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        del sys.modules[name]
        raise LoadError(f"{_where(exc, abspath)}: the script called sys.exit({exc.code!r}) "
                        f"while loading") from None
    except BaseException as exc:  # noqa: B902 - any failure of user code is a load error
        del sys.modules[name]
        kind = "import error" if isinstance(exc, ImportError) else "error while loading"
        raise LoadError(f"{_where(exc, abspath)}: {kind}: {_describe(exc)}") from exc

    try:
        app = _get_attribute(module, callable_name)
    except AttributeError:
        raise LoadError(f"{path}: no WSGI callable named '{callable_name}' in the script "
                        f"(define it, or choose another name with --callable-object)") from None
    return _check_callable(app, path, callable_name)


def load_module_spec(spec: str, default_attribute: str = "application") -> Callable:
    """Import 'pkg.module:attr' (attr may be dotted; empty means default_attribute)."""
    module_name, _, attr = spec.partition(":")
    attr = attr or default_attribute
    if not module_name or not all(p.isidentifier() for p in module_name.split(".")):
        raise LoadError(f"{spec}: not a module spec; expected pkg.module:application")
    add_working_directory_to_path()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and \
                (len(exc.name) == len(module_name) or module_name[len(exc.name)] == "."):
            raise LoadError(f"{spec}: no module named '{exc.name}' "
                            f"(looked in the current directory and sys.path)") from None
        raise LoadError(f"{_where(exc)}: import error while importing '{module_name}': "
                        f"{_describe(exc)}") from exc
    except SystemExit as exc:
        raise LoadError(f"{_where(exc)}: module '{module_name}' called sys.exit({exc.code!r}) "
                        f"while loading") from None
    except SyntaxError as exc:
        line = f":{exc.lineno}" if exc.lineno else ""
        raise LoadError(f"{exc.filename}{line}: syntax error: {exc.msg}") from None
    except BaseException as exc:  # noqa: B902
        kind = "import error" if isinstance(exc, ImportError) else "error while importing"
        raise LoadError(f"{_where(exc)}: {kind} '{module_name}': {_describe(exc)}") from exc
    try:
        app = _get_attribute(module, attr)
    except AttributeError:
        raise LoadError(f"{spec}: module '{module_name}' has no attribute '{attr}'") from None
    return _check_callable(app, spec, attr)


def load(target: str, callable_name: str = "application") -> Callable:
    """A script path, or 'pkg.module:app' when that is not an existing file. (A mod_python
    handler, 'module::handler', is the planner's business: pywsgi.modpython.handler.)"""
    if is_module_spec(target):
        return load_module_spec(target, callable_name)
    return load_script(target, callable_name)
