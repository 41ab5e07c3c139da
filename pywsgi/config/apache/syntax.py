"""Apache configuration syntax: the files of ``--apache-config`` as a tree of ``Directive``.

One directive per line, ``\\`` continues a line, ``#`` starts a comment line, double- or
single-quoted arguments, ``<Section args>`` ... ``</Section>`` nesting, case-insensitive names,
``Include`` / ``IncludeOptional`` with wildcards, relative to ServerRoot. ``root``
(``--apache-root DIR``) is prefixed to every absolute path, like a chroot. What the directives
mean for pywsgi is translate.py's business.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from pywsgi.errors import ConfigError

__all__ = ["ApacheConfigError", "Directive", "Parser", "parse"]


class ApacheConfigError(ConfigError):
    """The configuration cannot be imported; the message starts with FILE:LINE."""


@dataclass
class Directive:
    name: str                         # as written, e.g. 'WSGIScriptAlias' or 'Directory'
    args: List[str]
    file: str
    line: int
    children: Optional[List[Directive]] = None   # a <Section>: the directives inside

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _split_args(text: str, where: str) -> List[str]:
    """Apache's ap_getword_conf: words separated by blanks; "..." or '...' group a word, and a
    backslash inside quotes escapes the quote character."""
    words: List[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] in "\"'":
            quote = text[i]
            i += 1
            word = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
                    i += 1
                word.append(text[i])
                i += 1
            if i >= n:
                raise ApacheConfigError(f"{where}: unterminated quoted argument")
            i += 1
            words.append("".join(word))
        else:
            start = i
            while i < n and text[i] not in " \t":
                i += 1
            words.append(text[start:i])
    return words


def _logical_lines(path: str) -> List[Tuple[int, str]]:
    """(first line number, text) per directive; '\\' at the end of a line joins the next."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            physical = f.read().splitlines()
    except OSError as exc:
        raise ApacheConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines: List[Tuple[int, str]] = []
    pending: Optional[Tuple[int, str]] = None
    for number, text in enumerate(physical, 1):
        if pending is not None:
            start, so_far = pending
            text = so_far + text.lstrip()
        else:
            start = number
        stripped = text.rstrip()
        if stripped.endswith("\\"):
            pending = (start, stripped[:-1] + " ")
            continue
        pending = None
        stripped = stripped.strip()
        if stripped and not stripped.startswith("#"):
            lines.append((start, stripped))
    if pending is not None and pending[1].strip():
        lines.append((pending[0], pending[1].strip()))
    return lines


class Parser:
    def __init__(self, root: Optional[str], server_root: Optional[str]) -> None:
        self.root = root
        self.server_root = server_root
        self.including: List[str] = []

    def map_path(self, path: str) -> str:
        """A path of the configuration as a path on this machine (--apache-root, ServerRoot)."""
        if os.path.isabs(path):
            if self.root:
                return os.path.normpath(self.root + "/" + path.lstrip("/"))
            return os.path.normpath(path)
        return os.path.normpath(os.path.join(self.server_root or os.getcwd(), path))

    def parse_file(self, path: str) -> List[Directive]:
        real = os.path.realpath(path)
        if real in self.including:
            raise ApacheConfigError(f"{path}: included from itself (Include loop)")
        self.including.append(real)
        try:
            if self.server_root is None:
                self.server_root = os.path.dirname(os.path.abspath(path))
            display = path
            lines = _logical_lines(path)
            stack: List[Directive] = []
            top: List[Directive] = []
            for number, text in lines:
                where = f"{display}:{number}"
                if text.startswith("</"):
                    if not text.endswith(">"):
                        raise ApacheConfigError(f"{where}: {text!r}: missing '>'")
                    name = text[2:-1].strip()
                    if not stack:
                        raise ApacheConfigError(f"{where}: </{name}> without matching <{name}> "
                                                f"section")
                    opened = stack.pop()
                    if opened.key != name.lower():
                        raise ApacheConfigError(f"{where}: </{name}> closes <{opened.name}> "
                                                f"opened at line {opened.line}")
                    continue
                if text.startswith("<"):
                    if not text.endswith(">"):
                        raise ApacheConfigError(f"{where}: {text!r}: section opening lacks '>'")
                    words = _split_args(text[1:-1].strip(), where)
                    if not words:
                        raise ApacheConfigError(f"{where}: empty section '<>'")
                    section = Directive(words[0], words[1:], display, number, children=[])
                    _body(stack, top).append(section)
                    stack.append(section)
                    continue
                words = _split_args(text, where)
                directive = Directive(words[0], words[1:], display, number)
                into = _body(stack, top)
                if directive.key in ("include", "includeoptional"):
                    into.extend(self.include(directive))
                    continue
                if directive.key == "serverroot" and directive.args:
                    self.server_root = self.map_path(directive.args[0])
                into.append(directive)
            if stack:
                raise ApacheConfigError(f"{display}:{stack[-1].line}: <{stack[-1].name}> "
                                        f"is never closed")
            return top
        finally:
            self.including.pop()

    def include(self, directive: Directive) -> List[Directive]:
        """Include PATTERN: every matching file, in name order, relative to ServerRoot.
        Apache: a wildcard that matches nothing is an error for Include, not IncludeOptional."""
        optional = directive.key == "includeoptional"
        if len(directive.args) != 1:
            raise ApacheConfigError(f"{directive.where}: {directive.name} takes one path")
        pattern = self.map_path(directive.args[0])
        if glob.has_magic(pattern):
            paths = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not paths and not optional:
                raise ApacheConfigError(f"{directive.where}: Include {directive.args[0]}: no "
                                        f"file matches (use IncludeOptional if that is fine)")
        elif os.path.isdir(pattern):
            paths = sorted(os.path.join(pattern, name) for name in os.listdir(pattern)
                           if os.path.isfile(os.path.join(pattern, name)))
        elif os.path.exists(pattern):
            paths = [pattern]
        elif optional:
            paths = []
        else:
            raise ApacheConfigError(f"{directive.where}: Include {directive.args[0]}: "
                                    f"no such file ({pattern})")
        result: List[Directive] = []
        for path in paths:
            result.extend(self.parse_file(path))
        return result


def _body(stack: List[Directive], top: List[Directive]) -> List[Directive]:
    """Where the next directive goes: inside the open section, else at the top level."""
    if not stack:
        return top
    children = stack[-1].children
    assert children is not None  # a section is made with children=[]
    return children


def parse(path: str, root: Optional[str] = None) -> List[Directive]:
    """The directives of the configuration file `path`, Includes expanded."""
    return Parser(root, None).parse_file(path)
