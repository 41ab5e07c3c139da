"""--pid-file: refused while it names a live process, written atomically once the master
listens, removed on exit if it still holds our pid (docs/operations.md)."""
from __future__ import annotations

import os
from typing import Optional

from pywsgi.errors import StartupError
from pywsgi.observe import errorlog

__all__ = ["check_pid_file", "write_pid_file", "remove_pid_file"]


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(64).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StartupError(f"--pid-file {path}: cannot read it: {exc.strerror or exc}") from None
    return int(text) if text.isdigit() and int(text) > 0 else -1


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True      # it exists, it is just not ours to signal
    return True


def check_pid_file(path: Optional[str]) -> None:
    """Refuse to start when the pid file names a live process (another server is running);
    a stale file (dead pid, or not a pid at all) is left to write_pid_file to replace."""
    if not path:
        return
    pid = _read_pid(path)
    if pid is None:
        return
    if pid > 0 and pid != os.getpid() and _process_exists(pid):
        raise StartupError(f"--pid-file {path}: process {pid} named there is running (is "
                              f"another pywsgi running? stop it, or remove the file if that "
                              f"process is not pywsgi)")
    errorlog.info(f"--pid-file {path}: replacing a stale pid file "
                  f"({'process ' + str(pid) + ' is gone' if pid > 0 else 'no pid in it'})")


def write_pid_file(path: Optional[str]) -> None:
    """Write our pid atomically: a temporary file in the same directory, then rename(2), so a
    reader never sees an empty or half-written file."""
    if not path:
        return
    directory = os.path.dirname(path) or "."
    import tempfile  # (here: only with --pid-file)

    try:
        fd, temporary = tempfile.mkstemp(prefix=".pywsgi-pid-", dir=directory)
    except OSError as exc:
        raise StartupError(f"--pid-file {path}: cannot write it: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise StartupError(f"--pid-file {path}: cannot write it: {exc.strerror or exc}") from None


def remove_pid_file(path: Optional[str]) -> None:
    """Remove the pid file, only if it still holds our pid (a successor may have replaced it)."""
    if not path:
        return
    try:
        if _read_pid(path) == os.getpid():
            os.unlink(path)
    except (OSError, StartupError):
        pass
