"""Recycling a daemon process on memory or changed scripts (docs/daemon-mode.md, "Recycling").

The core's main loop (serve() in pywsgi/_core.pyx) applies the time and request limits itself;
it asks a RecycleWatch about once a second for what needs a look at the process or the disk.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.handlers.scripts import DocumentRootFirst, HandlerScripts

__all__ = ["RecycleWatch"]


class RecycleWatch:
    """In a daemon process, asked about once a second: is the RSS above memory-limit (the
    process is recycled), has a script it serves changed on disk (the process is replaced)?"""

    def __init__(self, group: DaemonGroup, script_paths: List[str]) -> None:
        self.group = group
        self.script_paths = list(script_paths) if group.script_reloading else []
        self.seen: Dict[str, tuple] = {}
        self.caches: List[Any] = []
        self.told: Dict[str, tuple] = {}
        self.page_size = os.sysconf("SC_PAGE_SIZE") if group.memory_limit else 0

    @staticmethod
    def _signature(path: str):
        try:
            st = os.stat(path)
        except OSError:
            return None  # being replaced (an editor's rename): look again next time
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def start(self, apps) -> None:
        """Called by the core once the application(s) are loaded: the files as they are now."""
        for path in self.script_paths:
            self.seen[path] = self._signature(path)
        if self.group.script_reloading:
            for app in apps:
                if isinstance(app, DocumentRootFirst):
                    app = app.files
                if isinstance(app, HandlerScripts):
                    self.caches.append(app.scripts)

    def rss(self) -> int:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * self.page_size

    def check_memory(self) -> Optional[str]:
        limit = self.group.memory_limit
        if limit:
            try:
                rss = self.rss()
            except (OSError, ValueError, IndexError):
                rss = 0
            if rss > limit:
                return ("its memory (RSS %d bytes) is above memory-limit (%d bytes)"
                        % (rss, limit))
        return None

    def check_files(self) -> Optional[str]:
        """Which script file changed since it was loaded (each change is told once), or None."""
        for path, before in self.seen.items():
            now = self._signature(path)
            if now is not None and now != before:
                self.seen[path] = now
                return "the script %s changed" % path
        for cache in self.caches:
            # handler scripts this process has loaded (and would otherwise reload one by one)
            for path, entry in list(cache._entries.items()):
                now = self._signature(path)
                if now is not None and now[:2] != tuple(entry[:2]) \
                        and self.told.get(path) != now:
                    self.told[path] = now
                    return "the handler script %s changed" % path
        return None
