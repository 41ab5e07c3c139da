"""What a mount's target names, read from its text alone (no import, no file read beyond an
existence check): a script path, a 'pkg.module:app' spec, or a mod_python 'module::handler'.

Shared by the settings converters, the mount planner and the loader, so none of them imports
another to ask.
"""
from __future__ import annotations

import os

__all__ = ["is_module_spec", "is_handler_spec"]


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def is_module_spec(target: str) -> bool:
    """'pkg.module:app' (or 'pkg.module:') that is not an existing file path."""
    if os.path.exists(target):
        return False
    module, sep, attr = target.partition(":")
    if not sep or not module:
        return False
    if attr.startswith(":"):
        attr = attr[1:]  # 'module::handler': a mod_python handler
    return _dotted(module) and (not attr or _dotted(attr))


def is_handler_spec(target: str) -> bool:
    """'module::handler' (PythonHandler module::handler), the handler part optional."""
    module, sep, handler = target.partition("::")
    return bool(sep) and bool(module) and _dotted(module) and (not handler or _dotted(handler))
