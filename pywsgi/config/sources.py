"""Where settings come from: the command line, PYWSGI_* environment variables, configuration files
and the Python API, merged by precedence (docs/configuration.md).

    command line / serve() keywords  >  PYWSGI_* environment  >  configuration file(s)  >  defaults

Everything here is driven by the settings table (settings.SETTINGS): a new Setting row is at once
a file key, an environment variable and a keyword, with no change to this module.

A file source is a ``FileSource``: a reader (``read_toml`` here; another format only needs its own
reader) returns the raw values by setting name, the positional application if the file names one,
and the line of each key for messages. ``collect()`` checks every value of every source, naming
the source of a bad one (``pywsgi.toml:12: bad value for setting 'port' ...``,
``PYWSGI_PORT: ...``), and returns the winning value of each setting.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from pywsgi.config.convert import as_file_mode
from pywsgi.config.daemon_groups import DaemonGroup, group_spec
from pywsgi.config.settings import SETTINGS, SETTINGS_BY_NAME, Setting, did_you_mean
from pywsgi.errors import ConfigError
from pywsgi.handlers.access import AccessRules
from pywsgi.targets import is_module_spec

__all__ = ["FileSource", "Collected", "collect", "read_toml", "setting_for_key",
           "ENV_PREFIX", "ENV_ALLOWED_PREFIXES", "APPLICATION_KEY", "to_toml"]

ENV_PREFIX = "PYWSGI_"
# PYWSGI_ variables that are not settings and are therefore not errors: the configuration file
# (PYWSGI_CONFIG), the application (PYWSGI_APPLICATION), and the test and smoke-test knobs.
ENV_ALLOWED_PREFIXES = ("PYWSGI_TEST_", "PYWSGI_SMOKE_")
ENV_CONFIG = "PYWSGI_CONFIG"
# The key (and PYWSGI_APPLICATION variable) for the positional SCRIPT | MODULE:APP.
APPLICATION_KEY = "application"


@dataclass
class FileSource:
    """One configuration file, as a reader returns it."""
    path: str                                   # as the user gave it; messages quote it
    values: Dict[str, Any]                      # key as written (setting name) -> raw value
    application: Optional[str] = None           # the positional SCRIPT | MODULE:APP, if given
    lines: Dict[str, int] = field(default_factory=dict)  # key as written -> line, for messages
    application_line: Optional[int] = None
    # Relative paths in the file resolve against this directory (default: the file's own).
    base_dir: Optional[str] = None

    def where(self, key: Optional[str] = None) -> str:
        line = self.application_line if key is None else self.lines.get(key)
        return f"{self.path}:{line}" if line else self.path


@dataclass
class Collected:
    """The result of collect(): converted values of the settings some source gave."""
    values: Dict[str, Any]                      # setting name -> converted value
    application: Optional[str] = None           # the positional SCRIPT | MODULE:APP, if any
    origins: Dict[str, str] = field(default_factory=dict)  # setting name -> where it came from
    application_origin: Optional[str] = None


def setting_for_key(key: str) -> Optional[Setting]:
    """The setting a file key or keyword names ('keep-alive-timeout' = 'keep_alive_timeout');
    None for an unknown key or an internal setting (no command-line flag)."""
    setting = SETTINGS_BY_NAME.get(key.replace("-", "_"))
    if setting is None or setting.internal:
        return None
    return setting


def _unknown(key: str) -> str:
    import difflib
    public = [s.name for s in SETTINGS if not s.internal] + [APPLICATION_KEY]
    close = difflib.get_close_matches(key.replace("-", "_"), public, n=1)
    return f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def convert_value(setting: Setting, raw: Any) -> Any:
    """setting.convert(raw), or ConfigError naming the setting (like settings.convert, and also for
    a value of a type the converter does not expect at all)."""
    try:
        return setting.convert(raw)
    except (ValueError, TypeError) as exc:
        flag = f" ({setting.flag})" if setting.flag else ""
        raise ConfigError(f"bad value for setting '{setting.name}'{flag}: {exc}") from None


@contextmanager
def _working_directory(path: Optional[str]) -> Iterator[None]:
    """Converters make relative paths absolute against the working directory (os.path.abspath);
    a file's values are converted from the file's directory so its paths resolve against it."""
    try:
        previous = os.getcwd()
    except OSError:  # the working directory was removed: nothing to come back to
        previous = None
    if not path or path == previous:
        yield
        return
    try:
        os.chdir(path)
    except OSError as exc:
        raise ConfigError(f"cannot enter the configuration file's directory {path}: "
                          f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        if previous is not None:
            os.chdir(previous)


def _resolve_application(target: str) -> str:
    """A script path made absolute (against the working directory); a module spec as given."""
    target = target.strip()
    if not target:
        raise ConfigError("the application is empty (expected SCRIPT or MODULE:APP)")
    if is_module_spec(target):
        return target
    return os.path.abspath(os.path.expanduser(target))


# ------------------------------------------------------------------ environment

def _env_setting_name(variable: str) -> str:
    return variable[len(ENV_PREFIX):].lower()


def env_variable(setting_name: str) -> str:
    return ENV_PREFIX + setting_name.upper()


def _env_values(environ: Mapping[str, str], collected: Collected) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable == ENV_CONFIG or \
                variable.startswith(ENV_ALLOWED_PREFIXES):
            continue
        text = environ[variable]
        if text == "":  # an empty variable counts as not set (Docker's ENV VAR="")
            continue
        name = _env_setting_name(variable)
        if name == APPLICATION_KEY:
            collected.application = _resolve_application(text)
            collected.application_origin = variable
            continue
        setting = setting_for_key(name) if variable == env_variable(name) else None
        if setting is None:
            raise ConfigError(f"environment variable {variable}: " + _unknown(name) +
                              "; PYWSGI_* variables name settings (see pywsgi --help)")
        raw: Any = text
        if setting.repeatable:
            # One use of the flag per line: PYWSGI_URL_ALIAS=$'/a=dir1\n/b=dir2'.
            raw = [line.strip() for line in text.splitlines() if line.strip()]
        try:
            values[setting.name] = convert_value(setting, raw)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {variable}: {exc}") from None
        collected.origins[setting.name] = variable
    return values


# ------------------------------------------------------------------ files

def _file_values(source: FileSource, collected: Collected) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    keys_seen: Dict[str, str] = {}
    base_dir = source.base_dir or os.path.dirname(os.path.abspath(source.path))
    with _working_directory(base_dir):
        if source.application is not None:
            try:
                collected.application = _resolve_application(str(source.application))
            except ConfigError as exc:
                raise ConfigError(f"{source.where()}: {exc}") from None
            collected.application_origin = source.where()
        for key, raw in source.values.items():
            setting = setting_for_key(key)
            if setting is None:
                raise ConfigError(f"{source.where(key)}: {_unknown(key)}")
            if setting.name in keys_seen:
                raise ConfigError(f"{source.where(key)}: setting '{setting.name}' given twice "
                                  f"(as {keys_seen[setting.name]!r} and {key!r})")
            keys_seen[setting.name] = key
            try:
                values[setting.name] = convert_value(setting, raw)
            except ConfigError as exc:
                raise ConfigError(f"{source.where(key)}: {exc}") from None
            collected.origins[setting.name] = source.where(key)
    return values


def collect(cli_values: Optional[Mapping[str, Any]] = None,
            cli_application: Optional[str] = None,
            environ: Optional[Mapping[str, str]] = None,
            files: Sequence[FileSource] = (),
            cli_origin=lambda setting: setting.flag or setting.name) -> Collected:
    """Merge the sources: cli_values (setting name -> value; the command line or the API's
    keywords) > environ's PYWSGI_* variables > files (a later file wins over an earlier one).

    Every value of every source is converted (a bad one is a ConfigError naming its source, even
    if a higher source overrides it); a list-valued setting takes the whole list of the highest
    source that gives it (lists from several sources are not joined).
    """
    collected = Collected(values={})
    for source in files:
        collected.values.update(_file_values(source, collected))
    if environ is not None:
        collected.values.update(_env_values(environ, collected))
    for name, value in (cli_values or {}).items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name!r}" + did_you_mean(name))
        if value is None and setting.default is not None:
            continue  # "not given", as settings.build() reads it
        collected.values[name] = value  # converted by settings.build()
        collected.origins[name] = cli_origin(setting)
    if cli_application is not None:
        collected.application = cli_application
        collected.application_origin = "command line"
    return collected


# ------------------------------------------------------------------ Apache configuration

def apache_sources(given: Mapping[str, Any], environ: Optional[Mapping[str, str]]
                   ) -> List[FileSource]:
    """--apache-config (from the command line or keywords, else PYWSGI_APACHE_CONFIG) read by
    pywsgi.config.apache as a file-level source; its warnings go to stderr once each."""
    environ = environ or {}
    path = given.get("apache_config") or environ.get("PYWSGI_APACHE_CONFIG") or None
    if not path:
        return []
    root = given.get("apache_root") or environ.get("PYWSGI_APACHE_ROOT") or None
    # the Apache reader (and its modules) only for a server configured that way
    from pywsgi.config.apache.translate import read as read_apache_config

    imported, target, warnings = read_apache_config(os.fspath(path), root)
    for warning in warnings:
        sys.stderr.write(f"pywsgi: warning: {warning}\n")
    sys.stderr.flush()
    return [FileSource(path=os.fspath(path), values=dict(imported), application=target,
                       base_dir=os.getcwd())]


# ------------------------------------------------------------------ TOML files

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def read_toml(path: str) -> FileSource:
    """Read a TOML configuration file: ``key = value`` per setting (see docs/configuration.md).

    Raises ConfigError for a missing or unreadable file, a TOML syntax error (with its line), or
    a Python without tomllib (before 3.11).
    """
    try:
        import tomllib
    except ImportError:
        raise ConfigError(f"--config {path}: reading TOML needs Python 3.11 or later (the "
                          f"standard library's tomllib); this is Python "
                          f"{sys.version_info[0]}.{sys.version_info[1]}") from None
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match:
            return_line = match.group(1)
            message = message[:match.start()]
            raise ConfigError(f"{path}:{return_line}: TOML syntax error: {message}") from None
        raise ConfigError(f"{path}: TOML syntax error: {message}") from None

    lines = _key_lines(text)
    source = FileSource(path=path, values={}, lines=lines)
    for key, value in document.items():
        if key.replace("-", "_") == APPLICATION_KEY:
            if not isinstance(value, str):
                raise ConfigError(f"{source.where(key)}: '{key}' must be a string: SCRIPT or "
                                  f"MODULE:APP")
            source.application = value
            source.application_line = lines.get(key)
            continue
        setting = setting_for_key(key)
        source.values[key] = _toml_shape(setting, value) if setting is not None else value
    return source


def _toml_shape(setting: Setting, value: Any) -> Any:
    """The natural TOML spellings of list-valued settings, turned into what converters take:

    - a table  ``[url_alias] "/static" = "htdocs"``  -> one use per entry: ["/static", "htdocs"]
      (nargs=2 settings) or "/static=htdocs" (the /URL=PATH, KEY=VALUE forms);
    - a table of tables  ``[daemon_process.NAME] processes = 2``  -> "NAME:processes=2";
    - for a two-word flag (nargs=2) a flat ["/url", "path"] is one use, a list of such lists or of
      "/url=path" strings is several.
    """
    if not setting.repeatable:
        return value
    if isinstance(value, dict):
        items: List[Any] = []
        for key, entry in value.items():
            if isinstance(entry, dict):
                items.append(f"{key}:" + ",".join(
                    f"{option.replace('_', '-')}={_option_text(option_value)}"
                    for option, option_value in entry.items()))
            elif setting.nargs == 2:
                items.append([key, entry])
            else:
                items.append(f"{key}={_option_text(entry, '; ')}")
        return items
    if setting.nargs and isinstance(value, list) and len(value) == setting.nargs and \
            all(isinstance(item, str) for item in value) and "=" not in value[0]:
        return [value]
    return value


def _option_text(value: Any, list_separator: str = ":") -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):  # python-path = ["a", "b"] -> a:b; access rules: a; b
        return list_separator.join(str(item) for item in value)
    return str(value)


_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*(?:\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+))")
_ASSIGNMENT = re.compile(r"^\s*(?:\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+))\s*[.=]")


def _key_lines(text: str) -> Dict[str, int]:
    """The line of each top-level key (tomllib reports none): its assignment before the first
    table header, or the first header of its table ([key], [key.NAME], [[key]])."""
    lines: Dict[str, int] = {}
    in_table = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            in_table = True
            key = next(group for group in header.groups() if group is not None)
            lines.setdefault(key, number)
            continue
        if in_table:
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            key = next(group for group in assignment.groups() if group is not None)
            lines.setdefault(key, number)
    return lines


# ------------------------------------------------------------------ printing (--print-config)

def _toml_string(text: str) -> str:
    # JSON's escapes are valid in a TOML basic string; DEL is the one control JSON leaves raw.
    import json

    return json.dumps(text, ensure_ascii=True).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table (a virtual host)
        return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + "}"
    return _toml_string(str(value))


def _raw_item(value: Any) -> Any:
    """One converted item back in a form its converter reads."""
    if isinstance(value, DaemonGroup):
        return group_spec(value)
    if isinstance(value, AccessRules):
        return "; ".join(value.directives)
    if isinstance(value, dict):  # a virtual host: its own settings
        return {key: (raw_value(SETTINGS_BY_NAME[key], item)
                      if key in SETTINGS_BY_NAME else _raw_item(item))
                for key, item in value.items()}
    if isinstance(value, tuple):
        if value and value[0] is None:  # an item whose URL defaults to --mount-point
            if len(value) == 3:  # a python_handler (None, MODULE, HANDLER): MODULE::HANDLER
                return f"{value[1]}::{value[2]}"
            if len(value) == 2:
                return _raw_item(value[1])
        return [_raw_item(part) for part in value]
    return value


def raw_value(setting: Setting, value: Any) -> Any:
    """A converted setting value as TOML-able raw data its converter reads back."""
    if setting.repeatable and isinstance(value, (list, tuple)):
        return [_raw_item(item) for item in value]
    if setting.convert is as_file_mode:
        return "%04o" % value  # read back as octal
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_raw_item(item) for item in value]
    return _raw_item(value)


def to_toml(collected: Collected) -> str:
    """The settings as a TOML file that --config reads back to the same settings: every setting
    some source gave as a line (with a comment naming the source), the others commented out
    with their defaults."""
    out = ["# pywsgi settings (pywsgi --print-config); see docs/configuration.md",
           "# Lines without '#' were given (source in the comment); the rest are the defaults."]
    if collected.application is not None:
        application = _resolve_application(collected.application)
        out.append(f"{APPLICATION_KEY} = {_toml_value(application)}"
                   f"  # {collected.application_origin}")
    for setting in SETTINGS:
        if setting.internal:
            continue
        if setting.name in collected.values:
            converted = convert_value(setting, collected.values[setting.name])
            origin = collected.origins.get(setting.name, "")
            if converted is None:  # given as "not set" ('-' for the error log): TOML has no null
                out.append(f"# {setting.name} = (not set)" + (f"  # {origin}" if origin else ""))
                continue
            out.append(f"{setting.name} = {_toml_value(raw_value(setting, converted))}"
                       + (f"  # {origin}" if origin else ""))
        elif setting.default is None:
            out.append(f"# {setting.name} = (not set)")
        else:
            out.append(f"# {setting.name} = {_toml_value(raw_value(setting, setting.default))}")
    return "\n".join(out) + "\n"
