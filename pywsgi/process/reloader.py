"""--reload-on-changes, a development aid: each child reports the files it loaded, the master
polls their mtimes about once a second and asks for a graceful restart on a change."""
from __future__ import annotations

import os
import sys
from typing import Dict, Optional

from pywsgi.observe import errorlog
from pywsgi.process.privileges import Privileges

__all__ = ["report_modules", "ChangeWatcher"]


def report_modules(report_dir: Optional[str], extra_files=()) -> None:
    """In a child once its application is loaded: write the source files of every imported
    module (and the script files) with their mtimes to REPORT_DIR/PID.modules, atomically,
    for the master's ChangeWatcher.  Best effort: reloading is a development aid."""
    if not report_dir:
        return
    files: Dict[str, int] = {}
    candidates = list(extra_files)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            candidates.append(path)
    for path in candidates:
        if path.endswith((".pyc", ".pyo")):
            source = getattr(sys.modules.get("importlib.util"), "source_from_cache", None)
            try:
                path = source(path) if source else path[:-1]
            except ValueError:
                path = path[:-1]
        try:
            files[os.path.abspath(path)] = os.stat(path).st_mtime_ns
        except OSError:
            continue          # built-in, zipped or vanished: nothing to watch
    final = os.path.join(report_dir, f"{os.getpid()}.modules")
    temporary = final + ".tmp"
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as f:
            for path, mtime in files.items():
                if "\n" not in path:
                    f.write(f"{mtime} {path}\n")
        os.rename(temporary, final)
    except OSError as exc:
        errorlog.warning(f"--reload-on-changes: cannot report the loaded modules: {exc}")


class ChangeWatcher:
    """In the master (no thread, no import of the application): the files the children
    reported, polled by mtime about once a second; a change asks for a graceful restart."""

    INTERVAL = 1.0

    def __init__(self, privileges: Optional[Privileges] = None) -> None:
        import tempfile  # (here: only with --reload-on-changes)

        self.directory = tempfile.mkdtemp(prefix="pywsgi-reload-")
        if privileges is not None and privileges.active:
            privileges.chown(self.directory)   # the children write their reports here
        self.files: Dict[str, int] = {}
        self.next_poll = 0.0

    def poll(self, now: float) -> Optional[str]:
        """The first changed file since the last poll (or None); at most once per INTERVAL."""
        if now < self.next_poll:
            return None
        self.next_poll = now + self.INTERVAL
        self._collect_reports()
        changed = None
        for path, seen in self.files.items():
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                mtime = -1                   # deleted (or being replaced): a change too
            if mtime != seen:
                self.files[path] = mtime     # the new children will report it again anyway
                changed = changed or path
        return changed

    def _collect_reports(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if not name.endswith(".modules"):
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    for line in f:
                        mtime, _, file_path = line.rstrip("\n").partition(" ")
                        if file_path and mtime.lstrip("-").isdigit():
                            # keep an mtime already known: a change seen between the child's
                            # report and now must still count
                            self.files.setdefault(file_path, int(mtime))
                os.unlink(path)
            except OSError:
                continue

    def close(self) -> None:
        try:
            for name in os.listdir(self.directory):
                os.unlink(os.path.join(self.directory, name))
            os.rmdir(self.directory)
        except OSError:
            pass
