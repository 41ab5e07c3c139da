"""The settings' converters: each takes a raw value (a string from the command line, an
environment variable or a file, or any Python value from the API) and returns the typed value, or
raises ``ValueError`` with a short reason, which the table (settings.py) turns into a ConfigError
naming the setting.

A converter makes a relative path absolute (os.path.abspath), so a path read from a configuration
file resolves against the file's directory (sources.py converts a file's values from there), and
converting a converted value again gives the same value.
"""
from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from pywsgi.handlers.access import AccessRules
from pywsgi.targets import is_module_spec

T = TypeVar("T")

KiB = 1024
MiB = 1024 * KiB

# Apache's level names; "warning" and "critical" are accepted as Python-style aliases.
LOG_LEVELS = ("debug", "info", "warn", "error", "crit")
_LOG_LEVEL_ALIASES = {"warning": "warn", "critical": "crit", "err": "error", "fatal": "crit"}

# Hosts that mean "every interface"; SERVER_NAME falls back to "localhost" for them.
WILDCARD_HOSTS = ("", "*", "0.0.0.0", "::", "[::]")


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _or_none(convert: Callable[[Any], T]) -> Callable[[Any], Optional[T]]:
    """`convert`, but None (not set) stays None."""
    def optional(value: Any) -> Optional[T]:
        return None if value is None else convert(value)
    return optional


as_optional_str = _or_none(as_str)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    raise ValueError(f"expected an integer, got {type(value).__name__}")


def as_positive_int(value: Any) -> int:
    number = _as_int(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


as_optional_positive_int = _or_none(as_positive_int)


def as_non_negative_int(value: Any) -> int:
    number = _as_int(value)
    if number < 0:
        raise ValueError(f"must be 0 or more, got {number}")
    return number


def as_port(value: Any) -> int:
    number = _as_int(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"must be a TCP port number 0-65535, got {number}")
    return number


def as_optional_port(value: Any) -> Optional[int]:
    if value is None or value == "":
        return None
    return as_port(value)


def as_seconds(value: Any) -> float:
    """A non-negative duration in seconds; ints and decimals both accepted."""
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {value!r}") from None
    else:
        raise ValueError(f"expected a number of seconds, got {type(value).__name__}")
    if not seconds >= 0 or seconds == float("inf"):  # also rejects NaN
        raise ValueError(f"must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def as_non_negative_float(value: Any) -> float:
    """A finite number >= 0 (a rate); ints and decimals both accepted."""
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return number


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$")
_SIZE_UNITS = {"": 1, "k": KiB, "m": MiB, "g": 1024 * MiB}


def as_byte_size(value: Any) -> int:
    """Bytes; strings may carry a binary unit: 8190, 64k, 10M, 10MiB, 1G."""
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if not match:
            raise ValueError(f"expected a size in bytes such as 8190, 64k or 10M, got {value!r}")
        return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return as_non_negative_int(value)


def as_log_level(value: Any) -> str:
    level = as_str(value).strip().lower()
    level = _LOG_LEVEL_ALIASES.get(level, level)
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


# Apache's AllowEncodedSlashes values, in the order the core numbers them (_core.pyx).
ENCODED_SLASHES = ("off", "on", "nodecode")


def as_encoded_slashes(value: Any) -> str:
    """AllowEncodedSlashes Off|On|NoDecode, without case as Apache takes it."""
    mode = as_str(value).strip().lower()
    if mode not in ENCODED_SLASHES:
        raise ValueError(f"must be off, on or nodecode, got {value!r}")
    return mode


def as_url_scheme(value: Any) -> str:
    scheme = as_str(value).strip().lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"must be http or https, got {value!r}")
    return scheme


def as_host(value: Any) -> str:
    """A host name or an IPv4/IPv6 literal; IPv6 may be given in brackets."""
    host = as_str(value).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(ch.isspace() for ch in host) or "/" in host:
        raise ValueError(f"not a host name or IP address: {value!r}")
    return host


def _pair(value: Any, expected: str) -> Tuple[Any, Any]:
    """(first, second) of a two-part value: a 2-item tuple or list (the Python API), or the text
    'FIRST=SECOND'; ValueError 'expected {expected}, got ...' for text without '='."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    text = as_str(value)
    first, sep, second = text.partition("=")
    if not sep:
        raise ValueError(f"expected {expected}, got {text!r}")
    return first, second


def normalize_mount_point(value: Any) -> str:
    """'' or '/' is the root; otherwise '/a/b' without a trailing slash (the SCRIPT_NAME)."""
    mount = as_str(value).strip()
    if mount in ("", "/"):
        return ""
    if not mount.startswith("/"):
        raise ValueError(f"must start with '/', got {value!r}")
    if "?" in mount or "#" in mount or any(ch.isspace() for ch in mount):
        raise ValueError(f"must be a plain URL path, got {value!r}")
    mount = mount.rstrip("/")
    if "//" in mount:
        raise ValueError(f"must not contain empty path segments, got {value!r}")
    return mount


def as_mount_point(value: Any) -> str:
    return normalize_mount_point(value)


def as_script_alias(value: Any) -> Tuple[str, str]:
    """'/url=PATH' (like ``WSGIScriptAlias /url PATH``) -> (mount, target).

    PATH is a script file or a 'pkg.module:app' spec; a tuple/list (url, path) is accepted from
    the Python API.
    """
    url, target = _pair(value, "/url=PATH")
    url = normalize_mount_point(url)
    target = as_str(target).strip()
    if not target:
        raise ValueError(f"missing PATH in {value!r}; expected /url=PATH")
    if not is_module_spec(target):  # a script path: absolute, like every path setting
        target = os.path.abspath(os.path.expanduser(target))
    return (url, target)


def _list_of(convert: Callable[[Any], Any], value: Any, unique: Optional[str] = None) -> list:
    """A repeatable setting's value: None -> [], one string -> [it], each item converted; with
    `unique` (how to name it, e.g. 'URL'), an item's first part may appear only once."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    items = [convert(item) for item in value]
    if unique:
        seen = set()
        for item in items:
            if item[0] in seen:
                raise ValueError(f"{unique} {item[0] or '/'!r} given twice")
            seen.add(item[0])
    return items


def as_script_alias_list(value: Any) -> List[Tuple[str, str]]:
    return _list_of(as_script_alias, value, unique="mount point")


def as_python_identifier_path(value: Any) -> str:
    name = as_str(value).strip()
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"must be a Python name such as 'application', got {value!r}")
    return name


def as_access_log(value: Any) -> Optional[str]:
    """'-' (stdout) or a file path (made absolute); None: no access log."""
    if value is None or value == "":
        return None
    value = as_str(value)
    return "-" if value == "-" else os.path.abspath(value)


def as_optional_path(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    path = as_str(value)
    if path == "-":
        return None  # '-' means stderr, like an unset error log
    return os.path.abspath(os.path.expanduser(path))


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    raise ValueError(f"expected true or false, got {value!r}")


def _as_pair(value: Any, what: str) -> Tuple[str, str]:
    """'URL PATH' given as two command-line words (a list), a (url, path) tuple, or 'URL=PATH'."""
    url, path = _pair(value, f"URL and {what}")
    url = normalize_mount_point(url)
    path = as_str(path).strip()
    if not path:
        raise ValueError(f"missing {what} for {url or '/'!r}")
    return url, os.path.abspath(os.path.expanduser(path))


def _as_pair_list(value: Any, what: str) -> List[Tuple[str, str]]:
    return _list_of(lambda item: _as_pair(item, what), value, unique="URL")


def as_url_alias_list(value: Any) -> List[Tuple[str, str]]:
    """--url-alias URL PATH (a directory or a single file), repeatable."""
    return _as_pair_list(value, "PATH")


def as_cgi_alias_list(value: Any) -> List[Tuple[str, str]]:
    """--cgi-alias URL PATH (a directory of CGI programs, or one program), repeatable."""
    return _as_pair_list(value, "PATH")


def as_cgi_script(value: Any) -> Tuple[Optional[str], str]:
    """'/url=APP.wsgi', or 'APP.wsgi' alone (mounted at --mount-point: url None)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        url, path = value
        return (None if url is None else normalize_mount_point(url),
                os.path.abspath(as_str(path)))
    text = as_str(value).strip()
    url, sep, path = text.partition("=")
    if sep and url.startswith("/") and not os.path.exists(text):
        return normalize_mount_point(url), os.path.abspath(os.path.expanduser(path.strip()))
    if not text:
        raise ValueError("expected APP.wsgi or /url=APP.wsgi")
    return None, os.path.abspath(os.path.expanduser(text))


def as_cgi_script_list(value: Any) -> List[Tuple[Optional[str], str]]:
    return _list_of(as_cgi_script, value)


def as_access(value: Any) -> Tuple[str, AccessRules]:
    """'MOUNT=RULES': Apache access directives for the URL prefix MOUNT, separated by ';' or
    newlines, e.g. '/admin=Order deny,allow; Deny from all; Allow from 10.0.0.0/8'."""
    url, rules = _pair(value, "MOUNT=RULES such as '/=Require ip 127.0.0.1'")
    url = normalize_mount_point(url)
    if not isinstance(rules, AccessRules):
        rules = AccessRules.parse(as_str(rules))
    if not rules:
        raise ValueError(f"no access directives for {url or '/'!r}")
    return url, rules


def as_access_list(value: Any) -> List[Tuple[str, AccessRules]]:
    """Several --access values; the rules given for one MOUNT are joined in order."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    merged: Dict[str, AccessRules] = {}
    for item in value:
        url, rules = as_access(item)
        if url in merged:
            merged[url].extend(rules)
        else:
            merged[url] = rules
    return list(merged.items())


def as_python_handler(value: Any) -> Tuple[Optional[str], str, str]:
    """'[/URL=]module[::handler]' (PythonHandler; the handler defaults to 'handler') ->
    (url or None for --mount-point, module, handler)."""
    if isinstance(value, (tuple, list)) and len(value) == 3:
        url, module, handler = value
    else:
        text = as_str(value).strip()
        url, sep, spec = text.partition("=")
        if not sep:
            url, spec = None, text
        module, _, handler = spec.strip().partition("::")
        handler = handler or "handler"
    if url is not None:
        url = normalize_mount_point(url)
    if not module or not all(part.isidentifier() for part in module.split(".")) or \
            not all(part.isidentifier() for part in handler.split(".")):
        raise ValueError(f"expected [/URL=]module[::handler], got {value!r}")
    return (url, module, handler)


def as_python_handler_list(value: Any) -> List[Tuple[Optional[str], str, str]]:
    return _list_of(as_python_handler, value)


def as_python_path_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [os.path.abspath(os.path.expanduser(as_str(item))) for item in value]


def as_python_option(value: Any) -> Tuple[str, str]:
    """'KEY=VALUE' (PythonOption KEY VALUE)."""
    key, option = _pair(value, "KEY=VALUE")
    key = as_str(key).strip()
    if not key:
        raise ValueError(f"missing KEY in {value!r}")
    return (key, as_str(option))


def as_python_option_list(value: Any) -> List[Tuple[str, str]]:
    return _list_of(as_python_option, value)


def as_extension_list(value: Any) -> List[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    extensions = []
    for item in value:
        ext = as_str(item).strip()
        if not ext:
            continue
        ext = ext if ext.startswith(".") else "." + ext
        if "/" in ext or ext == ".":
            raise ValueError(f"not a file name extension: {item!r}")
        extensions.append(ext)
    if not extensions:
        raise ValueError("no extension given")
    return extensions


def as_index_name(value: Any) -> str:
    name = as_str(value).strip()
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"must be a file name such as index.html, got {value!r}")
    return name


def as_optional_user_or_group(value: Any) -> Optional[str]:
    """A user or group name, or a numeric id (--user www-data, --user 33)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    name = as_str(value).strip()
    if not name or any(ch.isspace() or ch in ":/" for ch in name):
        raise ValueError(f"expected a name or a numeric id, got {value!r}")
    return name


def as_file_mode(value: Any) -> int:
    """Octal permissions: '0660', '660', '0o660' (or an int from the API)."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        text = as_str(value).strip().lower()
        text = text[2:] if text.startswith("0o") else text
        if not text or any(ch not in "01234567" for ch in text):
            raise ValueError(f"expected octal permissions such as 0660, got {value!r}")
        mode = int(text, 8)
    if not 0 <= mode <= 0o777:
        raise ValueError(f"expected permissions between 0000 and 0777, got {value!r}")
    return mode


# -- Apache configuration import (docs/migrating-from-mod_wsgi.md)

def as_mount_process_group(value: Any) -> Tuple[str, str]:
    """'/URL=GROUP' (like WSGIProcessGroup inside <Location /URL>) -> (mount, group name).

    GROUP names a --daemon-process group, or is '%{GLOBAL}' for embedded mode; a (url, group)
    tuple is accepted from the Python API.
    """
    url, group = _pair(value, "/URL=GROUP")
    url = normalize_mount_point(url)
    group = as_str(group).strip()
    if not group or "/" in group:
        raise ValueError(f"expected /URL=GROUP with a group name (no '/'), got {value!r}")
    return (url, group)


def as_mount_process_group_list(value: Any) -> List[Tuple[str, str]]:
    return _list_of(as_mount_process_group, value, unique="URL")


def as_optional_extension_list(value: Any) -> List[str]:
    return [] if value is None or value == [] or value == () else as_extension_list(value)


# -- server status converters (docs/server-status.md)

def as_status_url(value: Any) -> Optional[str]:
    """--server-status URL: a plain path below the root, such as /server-status."""
    if value is None:
        return None
    url = normalize_mount_point(value)
    if url == "":
        raise ValueError("must be a URL path such as /server-status, not the root")
    return url


def as_probe_url(value: Any) -> Optional[str]:
    """--health-url / --ready-url: a plain ASCII path below the root, such as /healthz; the
    core compares it with the request's path as sent (no percent-decoding), the query aside."""
    if value is None:
        return None
    url = normalize_mount_point(value)
    if url == "":
        raise ValueError("must be a URL path such as /healthz, not the root")
    if not url.isascii() or "%" in url:
        raise ValueError(f"must be plain ASCII without percent-escapes, got {value!r}")
    return url


def as_status_allow(value: Any) -> str:
    """One --server-status-allow value: an IPv4/IPv6 address or CIDR network."""
    text = as_str(value).strip()
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network such as 10.0.0.0/8: {value!r}") \
            from None


def as_status_allow_list(value: Any) -> List[str]:
    return _list_of(as_status_allow, value)
