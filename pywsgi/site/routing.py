"""Routing in Python: the one longest-prefix router and path normaliser.

The core routes every request itself, in Cython (``_route_in`` and ``_decode_path`` in
pywsgi/_core.pyx), by the same rules. What Python routes is an internal redirect: a CGI
script's local ``Location: /path`` (RFC 3875 6.2.2) and mod_python's ``req.internal_redirect``.
Both come here:

* a mount serves a path when its prefix is '' (the root) or the path is the prefix or starts
  with the prefix and '/' (``/myapp`` serves ``/myapp`` and ``/myapp/x``, never ``/myappx``);
  the longest such prefix wins;
* with name-based virtual hosts (mounts tagged ``virtual_host`` = (index, names)), only
  the mounts of the request's host count, or the first host's when no name matches (Apache's
  default virtual host), as in the core.

This module imports nothing of pywsgi.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Generic, Iterable, List, Mapping, Optional, TypeVar, Union
from urllib.parse import unquote

__all__ = ["prefix_matches", "normalize_path", "request_host", "Router",
           "set_internal_router", "internal_router"]

M = TypeVar("M")   # a mount: anything with .prefix (str) and .virtual_host (a tag or None)


def prefix_matches(prefix: str, path: str) -> bool:
    """Whether the mount at `prefix` serves `path` (on a path-segment boundary)."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


_ENCODED_SLASH = re.compile(r"(%2[fF])")


def normalize_path(path: str, encoded_slashes: str = "off") -> Union[str, int]:
    """Percent-decoded, dot segments removed, as the core does with a request's path; or the
    status to answer: 400 for a NUL, a path not starting with '/' or one that climbs above the
    root, 404 for an encoded slash (%2F) with --allow-encoded-slashes off. With nodecode each
    %2F stays as written (never a segment boundary); with on it is a '/' like any other."""
    pieces = _ENCODED_SLASH.split(path)   # text, '%2F', text, ...
    if len(pieces) > 1 and encoded_slashes == "off":
        return 404
    if encoded_slashes == "nodecode":
        decoded = "".join(piece if index % 2 else unquote(piece, encoding="latin-1")
                          for index, piece in enumerate(pieces))
    else:
        decoded = unquote(path, encoding="latin-1")
    if "\x00" in decoded or not decoded.startswith("/"):
        return 400
    segments: List[str] = []
    parts = decoded.split("/")[1:]
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment == ".":
            if last:
                segments.append("")
            continue
        if segment == "..":
            if not segments:
                return 400
            segments.pop()
            if last:
                segments.append("")
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def request_host(environ: Mapping[str, Any]) -> str:
    """The request's host name as the core matches virtual hosts: the Host header, lower case,
    without port or trailing dot ('' if none)."""
    host = str(environ.get("HTTP_HOST") or "").strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.partition(":")[0].rstrip(".")


class Router(Generic[M]):
    """Longest prefix on a path-segment boundary, per name-based virtual host."""

    def __init__(self, mounts: Iterable[M]) -> None:
        ordered = sorted(mounts, key=lambda mount: -len(mount.prefix))  # type: ignore[attr-defined]
        self._all: List[M] = ordered
        self._by_host: Dict[int, List[M]] = {}
        self._host_index: Dict[str, int] = {}
        for mount in ordered:
            tag = mount.virtual_host  # type: ignore[attr-defined]
            if tag is None:
                continue
            index, names = tag
            self._by_host.setdefault(index, []).append(mount)
            for name in names:
                self._host_index.setdefault(name, index)

    def route(self, path: str, host: str = "") -> Optional[M]:
        """The mount that serves `path` for a request to `host`, or None."""
        mounts = self._all
        if self._by_host:  # virtual hosts: the host's mounts, else the first host's
            mounts = self._by_host.get(self._host_index.get(host, 0), [])
        for mount in mounts:
            if prefix_matches(mount.prefix, path):  # type: ignore[attr-defined]
                return mount
        return None


# The serving process's mounts, for internal redirects; set by site/load.py once they are
# loaded, when the server has CGI mounts (else a CGI redirect goes back to the client as 302,
# and mod_python routes among its own handlers).
_internal_router: Optional[Router] = None


def set_internal_router(mounts: Optional[Iterable[Any]]) -> None:
    global _internal_router
    _internal_router = Router(mounts) if mounts is not None else None


def internal_router() -> Optional[Router]:
    return _internal_router
