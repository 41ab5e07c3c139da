"""What `pywsgi` says about an option it does not know (cli.py): the pywsgi option for a spelling
from gunicorn, uWSGI, waitress-serve or mod_wsgi-express, else the nearest pywsgi flag.

    pywsgi -b 127.0.0.1:8005 app:app   ->  unrecognized option -b (gunicorn --bind):
                                            use --host 127.0.0.1 --port 8005
    pywsgi --prot 8000                 ->  unrecognized option --prot (did you mean --port?)

Only well-known spellings are listed, each answered with what pywsgi really does (its option, or
why there is none); a spelling two servers use differently (-w, -p, --listen) is told apart by
its value. Spellings pywsgi shares with them (--threads, --processes, --graceful-timeout, --user,
--log-level, ...) are pywsgi's own options and never reach this module -- including --daemon,
which is mod_wsgi's daemon mode here, not gunicorn's detaching (its --help section says so).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple, Union

from pywsgi.config.settings import SETTINGS, close_match

__all__ = ["unknown_option_message", "FOREIGN_OPTIONS"]

Hint = Union[str, Callable[[Optional[str]], str]]


@dataclass(frozen=True)
class Foreign:
    spellings: Tuple[str, ...]
    origin: str                  # whose option it is, e.g. "gunicorn --bind"
    hint: Hint                   # "use --processes {value}", or a function of the value (or None)
    metavar: Optional[str] = None  # the value it takes (shown when none was given); None: a switch


def _is_int(value: Optional[str]) -> bool:
    return value is not None and value.strip().isdigit()


def _listen_hint(value: Optional[str]) -> str:
    """gunicorn --bind / uWSGI --http / waitress --listen ADDRESS -> --host/--port or
    --unix-socket (gunicorn's parse_address: 'unix:PATH', '[::1]:8000', 'HOST', ':8000')."""
    if not value:
        return "use --host HOST --port PORT, or --unix-socket PATH"
    if value.startswith("fd://"):
        return ("pywsgi takes listening sockets from systemd socket activation (LISTEN_FDS, "
                "docs/operations.md), not by number")
    if value.startswith("unix:"):
        path = value[len("unix:"):]
        path = path[2:] if path.startswith("//") else path
        return f"use --unix-socket {path}"
    if "/" in value and not value.startswith("["):
        return f"use --unix-socket {value}"  # uWSGI's socket paths have no 'unix:'
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    elif ":" in value:  # a bare IPv6 address
        host, port = value, ""
    elif value.isdigit():
        host, port = "", value
    else:
        host, port = value, ""
    if host in ("", "*"):
        host = "0.0.0.0"  # ':8000' is every interface to gunicorn and uWSGI alike
    if not port.isdigit():
        port = "8000"     # their default, and pywsgi's
    return f"use --host {host} --port {port}"


def _worker_or_module(value: Optional[str]) -> str:
    # gunicorn's -w is --workers N; uWSGI's -w is --wsgi MODULE.
    if value is None or _is_int(value):
        return f"use --processes {value or 'N'}"
    return _module_hint(value)


def _module_hint(value: Optional[str]) -> str:
    module = value or "pkg.module"
    spec = module if ":" in module else f"{module}:application"
    return f"give it as the argument: pywsgi {spec}"


def _processes_or_pid(value: Optional[str]) -> str:
    # uWSGI's -p is --processes N; gunicorn's -p is --pid FILE.
    if value is None or _is_int(value):
        return f"use --processes {value or 'N'} (or --pid-file PATH for a pid file)"
    return f"use --pid-file {value}"


def _backlog_or_listen(value: Optional[str]) -> str:
    # uWSGI's --listen N is the backlog; waitress' --listen HOST:PORT is an address.
    if _is_int(value):
        return f"use --listen-backlog {value}"
    return _listen_hint(value)


def _uwsgi_socket(value: Optional[str]) -> str:
    return ("pywsgi speaks HTTP, not the uwsgi protocol: " + _listen_hint(value)
            + " and proxy to it over HTTP")


def _static_map(value: Optional[str]) -> str:
    url, sep, path = (value or "").partition("=")
    if not sep:
        url, path = "/URL", "DIR"
    return f"use --url-alias {url} {path}"


def _group_option(option: str) -> Hint:
    return (f"in pywsgi {option} is an option of a daemon process group: --daemon-process "
            f"NAME:{option}={{value}} --process-group NAME (docs/daemon-mode.md)")


_TIMEOUT = ("use --request-timeout {value}: a request running longer is interrupted (504) "
            "or else its process recycled (docs/security.md); slow clients meet "
            "--socket-timeout, --header-timeout, --body-timeout")
_NO_DETACH = ("pywsgi does not detach from the terminal: run it under systemd or supervisord, "
              "with --pid-file PATH if a pid file is wanted (pywsgi's --daemon is mod_wsgi's "
              "daemon mode)")
_CHDIR = ("pywsgi has no such option: start it in {value} (cd {value} && pywsgi ...); that "
          "directory is on sys.path and relative paths resolve against it (a daemon process "
          "group has home={value})")
_PYTHONPATH = ("put the directory on PYTHONPATH (PYTHONPATH={value} pywsgi ...); pywsgi's "
               "--python-path is for --python-handler modules, a daemon process group has "
               "python-path={value}")
_CONFIG_FILE = ("pywsgi reads a TOML file of its own settings with --config FILE, or an Apache "
                "configuration with --apache-config FILE")
_LEAVE_OUT = "; leave it out"

FOREIGN_OPTIONS: Tuple[Foreign, ...] = (
    # -- listening
    Foreign(("-b", "--bind"), "gunicorn --bind", _listen_hint, "ADDRESS"),
    Foreign(("--http", "--http-socket"), "uWSGI", _listen_hint, "ADDRESS"),
    Foreign(("--listen",), "uWSGI's backlog, waitress' address", _backlog_or_listen, "ADDRESS"),
    Foreign(("-s", "--socket", "--uwsgi-socket"), "uWSGI", _uwsgi_socket, "ADDRESS"),
    Foreign(("--backlog",), "gunicorn, waitress", "use --listen-backlog {value}", "N"),
    Foreign(("--unix-socket-perms",), "waitress", "use --unix-socket-mode {value}", "MODE"),
    # -- processes and threads
    Foreign(("-w",), "gunicorn --workers, uWSGI --wsgi", _worker_or_module, "N"),
    Foreign(("--workers",), "gunicorn, uWSGI", "use --processes {value}", "N"),
    Foreign(("-k", "--worker-class"), "gunicorn",
            "pywsgi has one kind of worker: --processes N, each with --threads N", "CLASS"),
    Foreign(("--worker-connections",), "gunicorn",
            "use --max-clients {value} (connections per process)", "N"),
    Foreign(("--connection-limit",), "waitress",
            "use --max-clients {value} (connections per process)", "N"),
    Foreign(("-M", "--master"), "uWSGI", "pywsgi always runs a master process" + _LEAVE_OUT),
    Foreign(("--enable-threads",), "uWSGI",
            "threads are always on in pywsgi (--threads N, default 5)" + _LEAVE_OUT),
    Foreign(("--max-requests",), "gunicorn, uWSGI", "use --maximum-requests {value}", "N"),
    Foreign(("--max-requests-jitter",), "gunicorn",
            "--maximum-requests already adds up to 10 % random jitter" + _LEAVE_OUT, "N"),
    Foreign(("--preload",), "gunicorn",
            "pywsgi loads the application in each process after the fork, never before"),
    Foreign(("--lazy-apps",), "uWSGI",
            "pywsgi loads the application in each process after the fork" + _LEAVE_OUT),
    # -- timeouts
    Foreign(("-t", "--timeout"), "gunicorn --timeout", _TIMEOUT, "SECONDS"),
    Foreign(("--harakiri",), "uWSGI", _TIMEOUT, "SECONDS"),
    Foreign(("--keep-alive",), "gunicorn", "use --keep-alive-timeout {value}", "SECONDS"),
    Foreign(("--channel-timeout",), "waitress",
            "use --socket-timeout {value} (and --keep-alive-timeout for idle connections)",
            "SECONDS"),
    Foreign(("--worker-reload-mercy", "--reload-mercy"), "uWSGI",
            "use --graceful-timeout {value}", "SECONDS"),
    # -- limits
    Foreign(("--limit-post",), "uWSGI", "use --limit-request-body {value}", "BYTES"),
    Foreign(("--max-request-body-size",), "waitress", "use --limit-request-body {value}",
            "BYTES"),
    Foreign(("--buffer-size",), "uWSGI", "use --limit-request-head {value}", "BYTES"),
    Foreign(("--max-request-header-size",), "waitress", "use --limit-request-head {value}",
            "BYTES"),
    # -- the application
    Foreign(("--wsgi-file", "--file"), "uWSGI",
            "give the script as the argument: pywsgi {value}", "FILE"),
    Foreign(("--module", "--wsgi"), "uWSGI", _module_hint, "MODULE"),
    Foreign(("--callable",), "uWSGI", "use --callable-object {value}", "NAME"),
    Foreign(("--mount",), "uWSGI", "use --script-alias {value}", "/URL=APP"),
    Foreign(("--url-prefix",), "waitress", "use --mount-point {value}", "PREFIX"),
    Foreign(("--call",), "waitress",
            "pywsgi calls no application factory: make the module define the WSGI callable "
            "(application = create_app()) and serve pkg.module:application"),
    Foreign(("--chdir",), "gunicorn, uWSGI", _CHDIR, "DIR"),
    Foreign(("--working-directory",), "mod_wsgi-express", _CHDIR, "DIR"),
    Foreign(("--pythonpath",), "gunicorn, uWSGI", _PYTHONPATH, "DIR"),
    Foreign(("--pp",), "uWSGI --pythonpath", _PYTHONPATH, "DIR"),
    Foreign(("-H", "--home", "--virtualenv", "--venv"), "uWSGI",
            "run the pywsgi installed in that virtual environment ({value}/bin/pywsgi)", "DIR"),
    Foreign(("-e", "--env"), "gunicorn, uWSGI",
            "set it in pywsgi's environment: env {value} pywsgi ...", "KEY=VALUE"),
    Foreign(("-c",), "gunicorn --config", _CONFIG_FILE, "FILE"),
    Foreign(("--ini", "--yaml", "--json", "--xml"), "uWSGI", _CONFIG_FILE, "FILE"),
    Foreign(("--check-config",), "gunicorn",
            "--print-config prints the resulting settings and exits without serving"),
    Foreign(("--reload",), "gunicorn", "use --reload-on-changes"),
    Foreign(("--py-autoreload",), "uWSGI", "use --reload-on-changes"),
    # -- logs
    Foreign(("--access-logfile",), "gunicorn", "use --access-log {value}", "PATH"),
    Foreign(("--error-logfile", "--log-file"), "gunicorn", "use --error-log {value}", "PATH"),
    Foreign(("--logto",), "uWSGI", "use --error-log {value}", "PATH"),
    Foreign(("--access-logformat",), "gunicorn",
            "use --access-log-format FORMAT, in Apache's LogFormat syntax (%h %l %u %t ...)",
            "FORMAT"),
    Foreign(("--disable-logging",), "uWSGI",
            "pywsgi writes no access log unless --access-log PATH" + _LEAVE_OUT),
    # -- running as a service
    Foreign(("-D",), "gunicorn --daemon", _NO_DETACH),
    Foreign(("-d", "--daemonize", "--daemonize2"), "uWSGI", _NO_DETACH, "LOGFILE"),
    Foreign(("--pid",), "gunicorn", "use --pid-file {value}", "PATH"),
    Foreign(("--pidfile",), "uWSGI", "use --pid-file {value}", "PATH"),
    Foreign(("-p",), "uWSGI --processes, gunicorn --pid", _processes_or_pid, "N"),
    Foreign(("-u",), "gunicorn --user", "use --user {value}", "NAME"),
    Foreign(("--uid",), "uWSGI", "use --user {value}", "NAME"),
    Foreign(("-g",), "gunicorn --group", "use --group {value}", "NAME"),
    Foreign(("--gid",), "uWSGI", "use --group {value}", "NAME"),
    Foreign(("--vacuum",), "uWSGI",
            "pywsgi removes its --unix-socket and --pid-file on exit" + _LEAVE_OUT),
    Foreign(("--die-on-term",), "uWSGI", "SIGTERM already stops pywsgi gracefully" + _LEAVE_OUT),
    Foreign(("--stats",), "uWSGI",
            "pywsgi serves its status on its own port: --server-status /server-status",
            "ADDRESS"),
    Foreign(("--ident",), "waitress", "use --server-software {value}", "TEXT"),
    # -- static files
    Foreign(("--static-map",), "uWSGI", _static_map, "/URL=DIR"),
    Foreign(("--check-static",), "uWSGI", "use --document-root {value}", "DIR"),
    # -- proxies and TLS
    Foreign(("--forwarded-allow-ips", "--proxy-allow-from"), "gunicorn",
            "use --trust-proxy CIDR, once per address or network", "IPS"),
    Foreign(("--trusted-proxy",), "waitress", "use --trust-proxy {value}", "IP"),
    Foreign(("--trusted-proxy-headers",), "waitress",
            "use --trust-proxy-header NAME, once per header", "HEADERS"),
    Foreign(("--certfile",), "gunicorn", "use --ssl-certificate-file {value} with --https-port "
            "PORT (docs/tls.md)", "FILE"),
    Foreign(("--keyfile",), "gunicorn", "use --ssl-certificate-key-file {value}", "FILE"),
    Foreign(("--ca-certs",), "gunicorn", "use --ssl-ca-certificate-file {value} with "
            "--ssl-verify-client optional|require", "FILE"),
    Foreign(("--cert-reqs",), "gunicorn", "use --ssl-verify-client none|optional|require",
            "INT"),
    Foreign(("--https",), "uWSGI", "use --https-port PORT --ssl-certificate-file CERT "
            "--ssl-certificate-key-file KEY (docs/tls.md)", "ADDRESS"),
    Foreign(("--ssl-certificate",), "mod_wsgi-express",
            "use --ssl-certificate-file {value}.crt --ssl-certificate-key-file {value}.key",
            "PATH"),
    # -- mod_wsgi-express options that are daemon process group options here
    Foreign(("--queue-timeout",), "mod_wsgi-express", _group_option("queue-timeout"),
            "SECONDS"),
    Foreign(("--inactivity-timeout",), "mod_wsgi-express", _group_option("inactivity-timeout"),
            "SECONDS"),
    Foreign(("--restart-interval",), "mod_wsgi-express", _group_option("restart-interval"),
            "SECONDS"),
    Foreign(("--shutdown-timeout",), "mod_wsgi-express", _group_option("shutdown-timeout"),
            "SECONDS"),
    Foreign(("--memory-limit",), "mod_wsgi-express", _group_option("memory-limit"), "BYTES"),
    Foreign(("--entry-point",), "mod_wsgi-express",
            "give it as the argument: pywsgi {value}", "FILE"),
    Foreign(("--application-type",), "mod_wsgi-express",
            "a module is given as the argument, pywsgi pkg.module:application", "TYPE"),
    Foreign(("--error-log-file",), "mod_wsgi-express", "use --error-log {value}", "PATH"),
    Foreign(("--include-file",), "mod_wsgi-express", "use --apache-config {value}", "FILE"),
    Foreign(("--add-handler",), "mod_wsgi-express",
            "use --handler-scripts --handler-extension {value}", "EXT"),
    Foreign(("--server-root", "--setup-only"), "mod_wsgi-express",
            "pywsgi needs no generated Apache tree" + _LEAVE_OUT, "DIR"),
)


def _by_spelling() -> Dict[str, Foreign]:
    table = {spelling: entry for entry in FOREIGN_OPTIONS for spelling in entry.spellings}
    # mod_wsgi-express names the settings table records (--listener-backlog -> --listen-backlog)
    for setting in SETTINGS:
        if setting.express and setting.flag and setting.express != setting.flag:
            table.setdefault(setting.express, Foreign(
                (setting.express,), "mod_wsgi-express", f"use {setting.flag}"
                + (" {value}" if setting.const is None else ""), setting.metavar or "VALUE"))
    return table


_FOREIGN = _by_spelling()
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # argparse's: a value, not an option


def looks_like_option(token: str) -> bool:
    """Whether argparse takes `token` for an option (known or not), as its _parse_optional does:
    a dash and more, not a negative number, no space."""
    return (len(token) > 1 and token.startswith("-") and not _NEGATIVE_NUMBER.match(token)
            and " " not in token)


def _render(entry: Foreign, value: Optional[str]) -> str:
    if callable(entry.hint):
        return entry.hint(value if entry.metavar else None)
    return entry.hint.format(value=value or entry.metavar or "")


def _normalized(option: str) -> str:
    return option.lstrip("-").lower().replace("_", "-")


def nearest_flag(word: str, flags: Iterable[str]) -> Optional[str]:
    """The pywsgi flag a mistyped option meant: the same up to case, dashes and '_' (gunicorn's
    --limit-request-field_size), else the closest by close_match."""
    by_name = {flag.lstrip("-"): flag for flag in flags if flag.startswith("--")}
    name = _normalized(word)
    if name in by_name:
        return by_name[name]
    close = close_match(name, by_name)
    return by_name[close] if close else None


def unknown_option_message(token: str, following: Optional[str],
                           flags: Iterable[str]) -> Tuple[str, bool]:
    """The error for an option pywsgi does not know, and whether it names what to use instead;
    `following` is the next command-line word (its value, for an option that takes one),
    `flags` pywsgi's option strings."""
    flags = list(flags)
    name, equals, attached = token.partition("=")
    value: Optional[str] = attached if equals else following
    entry = _FOREIGN.get(name)
    suggestion = nearest_flag(name, flags)
    if entry is None and not name.startswith("--") and len(name) > 2 and (
            suggestion is None or suggestion.lstrip("-") != _normalized(name)):
        # -w4, -b127.0.0.1:8000: a short option with its value attached (but -port is --port)
        entry = _FOREIGN.get(name[:2])
        if entry is not None and entry.metavar:
            name, value = name[:2], name[2:]
        else:
            entry = None
    if entry is not None:
        if entry.metavar and value is not None and looks_like_option(value):
            value = None
        return f"unrecognized option {name} ({entry.origin}): {_render(entry, value)}", True
    if suggestion:
        return f"unrecognized option {name} (did you mean {suggestion}?)", True
    return f"unrecognized option {name}", False
