"""mod_python.util for pywsgi: FieldStorage, redirect, parse_header, parse_qs(l).

FieldStorage parses the query string and, for POST, an application/x-www-form-urlencoded or
multipart/form-data body, streaming: the multipart body is read in 64 KiB blocks straight from
wsgi.input, file parts go to temporary files (or the file_callback's file), so memory stays
bounded by the block size plus the non-file fields. The body limit (--limit-request-body) is
enforced by the server as the body is read (413); FieldStorage also refuses a declared length
over it. It does not use the stdlib ``cgi`` module (removed in Python 3.13).

Values are str (decoded as UTF-8, undecodable bytes replaced); an uploaded file's bytes are in
``field.file`` / ``field.value``.
"""
from __future__ import annotations

import io
import re
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl as _parse_qsl
from urllib.parse import unquote

import pywsgi.modpython.apache as apache
from pywsgi.modpython.apache import parse_qs, parse_qsl  # noqa: F401  (mod_python.util exports them)
from pywsgi.modpython.options import mod_python_settings

__all__ = ["FieldStorage", "Field", "StringField", "redirect", "parse_header", "parse_qs",
           "parse_qsl", "readBlockSize"]

readBlockSize = 65536          # mod_python's name: how much is read at a time
MAX_PART_HEAD = 16 * 1024      # the headers of one multipart part; more is a malformed body
MAX_FIELDS = 10000             # more fields than any form has: a request made to eat memory (400)


class Field:
    """One uploaded file (a part with a filename): .name, .filename, .file (at position 0),
    .value (its bytes), .type, .type_options, .disposition, .disposition_options, .headers."""

    def __init__(self, name: Optional[str]) -> None:
        self.name = name
        self.filename: Optional[str] = None
        self.file: Any = None
        self.type: Optional[str] = None
        self.type_options: Dict[str, str] = {}
        self.disposition: Optional[str] = None
        self.disposition_options: Dict[str, str] = {}
        self.headers: Any = apache.table()

    @property
    def value(self) -> Optional[bytes]:
        if self.file is None:
            return None
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data

    def __repr__(self) -> str:
        return f"Field({self.name!r}, filename={self.filename!r})"


class StringField(str):
    """A form value: a str with the attributes of a Field (filename None)."""

    name: Optional[str] = None
    filename = None
    type = "text/plain"
    type_options: Dict[str, str] = {}
    disposition: Optional[str] = None
    disposition_options: Dict[str, str] = {}

    def __new__(cls, value: str) -> StringField:
        field = super().__new__(cls, value)
        field.headers = apache.table()
        return field

    @property
    def value(self) -> str:
        return str(self)

    def __getattr__(self, name: str) -> Any:
        if name != "file":
            raise AttributeError(name)
        self.file = io.BytesIO(str(self).encode("utf-8"))  # made when first asked for
        return self.file

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {str(self)!r})"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _query_text(text: str) -> str:
    # QUERY_STRING holds the raw bytes as latin-1 (PEP 3333); percent-escapes decode as UTF-8
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


_PARAM = re.compile(r';\s*([^\s=;]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?')


def parse_header(line: str) -> Tuple[str, Dict[str, str]]:
    """'form-data; name="a"; filename="b.txt"' -> ('form-data', {'name': 'a', 'filename':
    'b.txt'}); quoted values may hold ';' and backslash escapes; filename* (RFC 5987/8187)
    wins over filename."""
    main, _, rest = line.partition(";")
    params: Dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        name = match.group(1).lower()
        value = (match.group(2) or "").strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name.endswith("*"):
            charset, _, encoded = value.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                value = unquote(encoded, encoding=charset or "utf-8", errors="replace")
            except LookupError:
                continue
            name = name[:-1]
            params[name] = value
            params[name + "*"] = value
        elif name + "*" not in params:  # filename* (already seen) wins over filename
            params[name] = value
    return main.strip().lower(), params


class FieldStorage:
    """mod_python.util.FieldStorage(req, keep_blank_values=0, strict_parsing=0,
    file_callback=None, field_callback=None).

    fs['name'] is the StringField (or Field for a file), or a list when the name came several
    times; fs.getfirst(name, default), fs.getlist(name), fs.get(name, default), name in fs,
    fs.keys(), fs.items(), fs.list (every field in order, query-string fields first).
    """

    def __init__(self, req: Any, keep_blank_values: int = 0, strict_parsing: int = 0,
                 file_callback: Optional[Callable[[str], Any]] = None,
                 field_callback: Optional[Callable[[], Any]] = None) -> None:
        self.list: List[Any] = []
        self._keep_blank = bool(keep_blank_values)
        self._strict = bool(strict_parsing)
        if req.args:
            self._add_pairs(_query_text(req.args))
        if req.method != "POST":
            return
        headers = req.headers_in
        ctype = headers.get("Content-Type") or "application/x-www-form-urlencoded"
        if isinstance(ctype, list):
            ctype = ctype[0]
        length = headers.get("Content-Length")
        limit = mod_python_settings.get("limit_request_body") or 0
        if length is not None and limit:
            try:
                if int(length) > limit:
                    raise apache.SERVER_RETURN(apache.HTTP_REQUEST_ENTITY_TOO_LARGE)
            except (TypeError, ValueError):
                raise apache.SERVER_RETURN(apache.HTTP_BAD_REQUEST) from None
        kind, options = parse_header(ctype)
        if kind == "application/x-www-form-urlencoded":
            self._add_pairs(_decode(req.read()))
        elif kind.startswith("multipart/"):
            boundary = options.get("boundary", "")
            if not boundary or len(boundary) > 200:
                raise apache.SERVER_RETURN(apache.HTTP_BAD_REQUEST)
            _MultipartReader(req, boundary.encode("latin-1", "replace"), self,
                             file_callback, field_callback).parse()
        else:
            raise apache.SERVER_RETURN(apache.HTTP_NOT_IMPLEMENTED)  # as mod_python does

    def _add_pairs(self, text: str) -> None:
        try:
            pairs = _parse_qsl(text, keep_blank_values=self._keep_blank,
                               strict_parsing=self._strict,
                               max_num_fields=MAX_FIELDS - len(self.list))
        except ValueError:
            raise apache.SERVER_RETURN(apache.HTTP_BAD_REQUEST) from None
        for key, value in pairs:
            self.add_field(key, value)

    def add_field(self, key: str, value: str) -> StringField:
        item = StringField(value)
        item.name = key
        self.list.append(item)
        self.__dict__.pop("_index", None)
        return item

    @property
    def dictionary(self) -> Dict[str, List[Any]]:
        index = self.__dict__.get("_index")
        if index is None:
            index = {}
            for item in self.list:
                index.setdefault(item.name, []).append(item)
            self.__dict__["_index"] = index
        return index

    def __getitem__(self, key: str) -> Any:
        found = self.dictionary[key]
        return found[0] if len(found) == 1 else found

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def getfirst(self, key: str, default: Any = None) -> Any:
        found = self.dictionary.get(key)
        return found[0] if found else default

    def getlist(self, key: str) -> List[Any]:
        return list(self.dictionary.get(key, ()))

    def keys(self) -> List[str]:
        return list(self.dictionary)

    def has_key(self, key: str) -> bool:
        return key in self.dictionary

    __contains__ = has_key

    def __len__(self) -> int:
        return len(self.dictionary)

    def __iter__(self):
        return iter(self.keys())

    def items(self) -> List[Tuple[str, Any]]:
        return [(item.name, item) for item in self.list]

    def clear(self) -> None:
        self.list = []
        self.__dict__.pop("_index", None)


class _MultipartReader:
    """multipart/form-data (RFC 7578) parsed from req.read() blocks.

    The body is: preamble, then '--boundary' CRLF part ... each part is headers, CRLF CRLF,
    content, and ends at CRLF '--boundary'; the last delimiter is followed by '--'."""

    def __init__(self, req: Any, boundary: bytes, storage: FieldStorage,
                 file_callback: Optional[Callable], field_callback: Optional[Callable]) -> None:
        self.req = req
        self.storage = storage
        self.file_callback = file_callback
        self.field_callback = field_callback
        self.first_delimiter = b"--" + boundary
        self.delimiter = b"\r\n--" + boundary
        self.buf = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.req.read(readBlockSize)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _bad(self) -> None:
        raise apache.SERVER_RETURN(apache.HTTP_BAD_REQUEST)

    def parse(self) -> None:
        # the preamble (usually empty) up to the first delimiter
        self.buf = b"\r\n"  # so a delimiter at the very start matches the CRLF form too
        if not self._skip_to_delimiter():
            return  # no parts at all: an empty form
        while self._after_delimiter():
            self._part()

    def _skip_to_delimiter(self) -> bool:
        while True:
            at = self.buf.find(self.delimiter)
            if at >= 0:
                self.buf = self.buf[at + len(self.delimiter):]
                return True
            keep = len(self.delimiter) - 1
            if len(self.buf) > keep:
                self.buf = self.buf[-keep:]
            if not self._fill():
                return False

    def _after_delimiter(self) -> bool:
        """After a delimiter: '--' ends the body; otherwise the rest of the line (transport
        padding) and its CRLF. True when a part follows."""
        while len(self.buf) < 2 and self._fill():
            pass
        if self.buf.startswith(b"--"):
            return False
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                self.buf = self.buf[end + 1:]
                return True
            if len(self.buf) > 1024:
                self._bad()
            if not self._fill():
                return False  # truncated after a delimiter: tolerated, as mod_python does

    def _part(self) -> None:
        if len(self.storage.list) >= MAX_FIELDS:
            self._bad()
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head, self.buf = self.buf[:end], self.buf[end + 4:]
                break
            if self.buf.startswith(b"\r\n"):  # a part without headers
                head, self.buf = b"", self.buf[2:]
                break
            if len(self.buf) > MAX_PART_HEAD:
                self._bad()
            if not self._fill():
                self._bad()
        headers = apache.table()
        for line in head.split(b"\r\n"):
            if not line:
                continue
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                self._bad()
            headers.add(name.strip(), value.strip())
        disposition, disposition_options = parse_header(headers.get("Content-Disposition") or "")
        ctype, type_options = parse_header(headers.get("Content-Type") or "text/plain")
        if "/" not in ctype:
            ctype = "application/octet-stream"
        name = disposition_options.get("name")
        filename = disposition_options.get("filename")
        if filename is not None:
            target = (self.file_callback(filename) if callable(self.file_callback)
                      else tempfile.TemporaryFile("w+b"))
        else:
            target = self.field_callback() if callable(self.field_callback) else io.BytesIO()
        self._copy_content(target)
        target.seek(0)
        if filename is not None:
            field: Any = Field(name)
            field.filename = filename
        else:
            data = target.read()
            field = StringField(_decode(data) if isinstance(data, bytes) else str(data))
            field.name = name
            target.seek(0)
        field.file = target
        field.type = ctype
        field.type_options = type_options
        field.disposition = disposition
        field.disposition_options = disposition_options
        field.headers = headers
        self.storage.list.append(field)
        self.storage.__dict__.pop("_index", None)

    def _copy_content(self, target: Any) -> None:
        keep = len(self.delimiter) - 1
        while True:
            at = self.buf.find(self.delimiter)
            if at >= 0:
                if at:
                    target.write(self.buf[:at])
                self.buf = self.buf[at + len(self.delimiter):]
                return
            if len(self.buf) > keep:
                target.write(self.buf[:-keep])
                self.buf = self.buf[-keep:]
            if not self._fill():
                # no closing delimiter: the rest is the content (mod_python tolerates it too)
                target.write(self.buf)
                self.buf = b""
                return


def redirect(req: Any, location: str, permanent: int = 0, text: Optional[str] = None) -> None:
    """Send a redirect (302, or 301 when permanent) to `location` and end the handler
    (raises SERVER_RETURN(apache.DONE)); IOError when the response already started."""
    if req.sent_bodyct:
        raise OSError("cannot redirect after headers have already been sent")
    req.err_headers_out["Location"] = location
    req.status = apache.HTTP_MOVED_PERMANENTLY if permanent else apache.HTTP_MOVED_TEMPORARILY
    if text is None:
        from html import escape
        text = f'<p>The document has moved <a href="{escape(location)}">here</a></p>\n'
        req.content_type = req.content_type or "text/html"
    req.write(text)
    raise apache.SERVER_RETURN(apache.DONE)
