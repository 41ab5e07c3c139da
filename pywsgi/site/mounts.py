"""A mount: a URL prefix and what serves it, as the planner (plan.py) makes it and the serving
processes load it (load.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

from pywsgi import loader

__all__ = ["Mount"]


@dataclass
class Mount:
    prefix: str                          # '' (root) or '/a/b'
    target: Union[str, Callable]         # script path, 'pkg.module:app', or the app itself
    label: str = ""                      # for log lines
    # keys added to the mount's extras (the core takes 'pywsgi.access': an AccessRules)
    extras: Dict[str, Any] = field(default_factory=dict)
    # applied to the loaded app (the document root in front of an app mounted at '/')
    wrap: Optional[Callable[[Callable], Callable]] = None
    # a mount made for access rules below another one: serves through the parent's app
    parent: Optional["Mount"] = None
    # for a directory-backed mount (static, handler scripts, CGI): the same kind of app for a
    # subdirectory, given the URL and its path below the prefix ('/files/private', '/private')
    subdirectory: Optional[Callable[[str, str], Callable]] = None

    def load(self, callable_name: str) -> Callable:
        if callable(self.target):
            app = self.target
        else:
            app = loader.load(self.target, callable_name)
        return self.wrap(app) if self.wrap is not None else app

    @property
    def group_prefix(self) -> str:
        """The prefix that names the application group (the parent's, for a sub-mount)."""
        return self.parent.group_prefix if self.parent is not None else self.prefix
