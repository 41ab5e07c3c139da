"""The one settings table of pywsgi.

Every setting is declared once, in ``SETTINGS`` below, with its name, converter, default, help
text and — where mod_wsgi-express has the same knob — the mod_wsgi-express option name. The table
feeds the command line (``cli.py`` builds its argparse parser from it) and the Python API
(``pywsgi.serve(app, **settings)``), in the manner of waitress' ``adjustments.py``.

A converter (convert.py) takes the raw value and returns the typed value, or raises
``ValueError`` with a short reason; ``build()`` turns that into a ``ConfigError`` that names the
setting, and returns the frozen, typed ``Settings`` (typed.py: a field per row, read as
``settings.port``). Command line, PYWSGI_* variables and files: sources.py and
docs/configuration.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from pywsgi.config.convert import (
    WILDCARD_HOSTS,
    KiB,
    MiB,
    as_access,
    as_access_list,
    as_access_log,
    as_bool,
    as_byte_size,
    as_cgi_alias_list,
    as_cgi_script,
    as_cgi_script_list,
    as_encoded_slashes,
    as_extension_list,
    as_file_mode,
    as_host,
    as_index_name,
    as_log_level,
    as_mount_point,
    as_mount_process_group,
    as_mount_process_group_list,
    as_non_negative_float,
    as_non_negative_int,
    as_optional_extension_list,
    as_optional_path,
    as_optional_port,
    as_optional_positive_int,
    as_optional_str,
    as_optional_user_or_group,
    as_port,
    as_positive_int,
    as_probe_url,
    as_python_handler,
    as_python_handler_list,
    as_python_identifier_path,
    as_python_option,
    as_python_option_list,
    as_python_path_list,
    as_script_alias,
    as_script_alias_list,
    as_seconds,
    as_status_allow,
    as_status_allow_list,
    as_status_url,
    as_str,
    as_url_alias_list,
    as_url_scheme,
)
from pywsgi.config.daemon_groups import DaemonGroup, parse_group
from pywsgi.config.proxies import (
    as_trust_proxy,
    as_trust_proxy_header,
    as_trust_proxy_header_list,
    as_trust_proxy_list,
)
from pywsgi.config.tls import (
    MOZILLA_INTERMEDIATE,
    PROTOCOLS,
    as_hsts_policy,
    as_ssl_ciphers,
    as_ssl_protocols,
    as_ssl_verify_client,
)
from pywsgi.config.typed import Settings
from pywsgi.errors import ConfigError
from pywsgi.version import __version__

__all__ = [
    "ConfigError", "Setting", "Settings", "SETTINGS", "SETTINGS_BY_NAME", "HELP_SECTIONS",
    "defaults", "convert", "build", "application_group_for", "close_match",
    "VIRTUAL_HOST_SETTINGS",
]


# ---------------------------------------------------------------- converters that need the table
# (a virtual host's settings are converted by their own rows) or the daemon groups' options

def as_daemon_process(value: Any) -> Any:
    """NAME:processes=2,threads=15,... -> a DaemonGroup (daemon_groups.py)."""
    if isinstance(value, DaemonGroup):
        return value
    return parse_group(as_str(value))


def as_daemon_process_list(value: Any) -> Tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        value = [value]
    return tuple(as_daemon_process(item) for item in value)


# What a name-based virtual host may set; every other setting is the server's.
VIRTUAL_HOST_SETTINGS = ("server_name", "server_alias", "document_root", "url_alias",
                         "script_alias", "cgi_alias", "access", "python_handler",
                         "process_group", "mount_process_group", "allow_encoded_slashes",
                         # a certificate of its own, chosen by SNI (docs/tls.md)
                         "ssl_certificate_file", "ssl_certificate_key_file",
                         "ssl_certificate_chain_file")


def as_virtual_host(value: Any) -> Dict[str, Any]:
    """One name-based virtual host: a dict (a TOML table) of VIRTUAL_HOST_SETTINGS; server_name
    and server_alias (a list) are the host names it answers to (without any, it is reached
    only as the default, when it comes first)."""
    if not isinstance(value, dict):
        raise ValueError(f"a virtual host is a table of settings, got {type(value).__name__}")
    host: Dict[str, Any] = {}
    for name, raw in value.items():
        if name not in VIRTUAL_HOST_SETTINGS:
            raise ValueError(f"virtual host: {name!r} cannot be set per virtual host (those "
                             f"that can: {', '.join(VIRTUAL_HOST_SETTINGS)})")
        if name == "server_alias":
            names = [raw] if isinstance(raw, str) else list(raw)
            host[name] = [as_host(item).lower() for item in names]
        else:
            host[name] = SETTINGS_BY_NAME[name].convert(raw)
    if not host.get("server_name") and not host.get("server_alias"):
        # reached only as the default (first) virtual host, as in Apache
        host.pop("server_name", None)
    return host


def as_virtual_host_list(value: Any) -> List[Dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    return [as_virtual_host(item) for item in value]


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Setting:
    name: str                       # attribute of the built Settings; keyword of the Python API
    convert: Callable[[Any], Any]   # raw value -> typed value, or ValueError(reason)
    default: Any                    # typed default; None may mean "derived" (see build())
    help: str
    express: Optional[str] = None   # the mod_wsgi-express option, where one exists
    flag: Optional[str] = None      # our command-line flag; None: API/internal only
    metavar: Union[str, Tuple[str, ...], None] = None   # a tuple: one per word (nargs)
    repeatable: bool = False        # flag may be given several times (list value)
    nargs: Optional[int] = None     # words per use of the flag (--url-alias URL PATH: 2)
    item_convert: Optional[Callable[[Any], Any]] = None  # checks one use of a repeatable flag
    const: Any = None               # not None: the flag takes no value and stores this
    aliases: Tuple[str, ...] = field(default_factory=tuple)
    internal: bool = False          # set by pywsgi itself; no file key, variable or flag


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


SETTINGS: Tuple[Setting, ...] = (
    # -- where to listen
    Setting("host", as_host, "127.0.0.1",
            "Interface to listen on: an IPv4/IPv6 address or a host name; 0.0.0.0 or :: for all "
            "interfaces.", express="--host", flag="--host", metavar="HOST"),
    Setting("port", as_port, 8000,
            "TCP port to listen on (0 picks a free port; the startup log line shows it).",
            express="--port", flag="--port", metavar="PORT"),
    Setting("listen_backlog", as_positive_int, 1024,
            "Length of the kernel's queue of not-yet-accepted connections.",
            express="--listener-backlog", flag="--listen-backlog", metavar="N"),
    # -- processes and threads
    Setting("processes", as_positive_int, 1,
            "Number of server child processes, each running the application.",
            express="--processes", flag="--processes", metavar="N"),
    Setting("threads", as_positive_int, 5,
            "Python worker threads per process that run the application. Default 5, the same as "
            "mod_wsgi-express: idle and slow connections cost no thread here (the reactor holds "
            "them), so threads only bound how many requests run application code at once, and "
            "with the GIL more threads only help applications that wait on I/O. Raise it for "
            "slow-I/O apps; add --processes for CPU-bound ones.",
            express="--threads", flag="--threads", metavar="N"),
    # -- the application(s)
    Setting("callable_object", as_python_identifier_path, "application",
            "Name of the WSGI callable in the script (WSGICallableObject).",
            express="--callable-object", flag="--callable-object", metavar="NAME"),
    Setting("mount_point", as_mount_point, "",
            "URL prefix the SCRIPT is mounted at; it becomes SCRIPT_NAME. Default: the root.",
            express="--mount-point", flag="--mount-point", metavar="URL"),
    Setting("script_alias", as_script_alias_list, (),
            "Mount another WSGI script (or pkg.module:app) at a URL, like WSGIScriptAlias; "
            "repeat to serve several applications.",
            express=None, flag="--script-alias", metavar="/URL=PATH", repeatable=True,
            item_convert=as_script_alias),
    Setting("application_group", as_optional_str, None,
            "mod_wsgi.application_group for every mount; '%{GLOBAL}' means ''. Default: "
            "'SERVER_NAME[:PORT]|MOUNT' per mount, like mod_wsgi's %{RESOURCE}.",
            express=None, flag="--application-group", metavar="NAME"),
    Setting("process_group", as_str, "",
            "The daemon process group (--daemon-process NAME) that runs the application(s), like "
            "WSGIProcessGroup; '' = embedded mode (in the server processes). Also reported as "
            "mod_wsgi.process_group.",
            express=None, flag="--process-group", metavar="NAME"),
    # -- daemon mode (docs/daemon-mode.md)
    Setting("daemon", as_bool, False,
            "Daemon mode, like mod_wsgi-express: the application runs in a daemon process group "
            "sized by --processes and --threads (WSGIDaemonProcess processes= threads=), and "
            "server processes (--server-processes, --server-threads) relay requests to it.",
            express=None, flag="--daemon", const=True),
    Setting("daemon_process", as_daemon_process_list, (),
            "Define a daemon process group: NAME:processes=2,threads=15,display-name=%{GROUP},"
            "queue-timeout=45,request-timeout=60,python-path=DIR,home=DIR,user=U,group=G "
            "(the WSGIDaemonProcess options); repeatable. Select it with --process-group NAME.",
            express=None, flag="--daemon-process", metavar="NAME:OPTIONS", repeatable=True,
            item_convert=as_daemon_process),
    Setting("server_processes", as_positive_int, 1,
            "Daemon mode: server processes that accept and relay (the application runs in the "
            "daemon group).", express=None, flag="--server-processes", metavar="N"),
    Setting("server_threads", as_non_negative_int, 0,
            "Daemon mode: relay threads per server process; 0 = as many as the daemon groups "
            "have threads in all (a relay thread waits on its daemon without the GIL).",
            express=None, flag="--server-threads", metavar="N"),
    # -- static files, handler scripts, CGI (docs/static-files.md, docs/static-cgi-handlers.md)
    Setting("document_root", as_optional_path, None,
            "Serve the files of this directory at '/' (DocumentRoot). Mounted applications win "
            "by longest prefix; when an application is also mounted at '/', a request naming an "
            "existing file (or a directory with an index file) gets the file and every other "
            "request goes to the application, as in mod_wsgi-express.",
            express="--document-root", flag="--document-root", metavar="DIR"),
    Setting("url_alias", as_url_alias_list, (),
            "Serve the directory or single file PATH at URL (Alias); repeatable.",
            express="--url-alias", flag="--url-alias", metavar=("URL", "PATH"),
            repeatable=True, nargs=2),
    Setting("directory_index", as_index_name, "index.html",
            "File served for a request naming a directory (DirectoryIndex).",
            express="--directory-index", flag="--directory-index", metavar="NAME"),
    Setting("follow_symlinks", as_bool, False,
            "Follow symbolic links that lead out of the document root or an alias directory "
            "(Options FollowSymLinks); without it they are refused with 403.",
            express=None, flag="--follow-symlinks", const=True),
    Setting("cache_control", as_optional_str, None,
            "Cache-Control header value sent with static files, e.g. 'public, max-age=3600'.",
            express=None, flag="--cache-control", metavar="VALUE"),
    Setting("precompressed", as_bool, True,
            "Precompressed files: NAME.br / NAME.gz beside NAME are served when the client "
            "accepts that encoding (with Vary: Accept-Encoding); --no-precompressed turns that "
            "off.",
            express=None, flag="--no-precompressed", const=False),
    Setting("handler_scripts", as_bool, False,
            "Run script files (*.wsgi) found under the document root and alias directories as "
            "applications, like 'AddHandler wsgi-script .wsgi': /dir/app.wsgi/more runs "
            "app.wsgi with PATH_INFO=/more; a changed file is reloaded.",
            express=None, flag="--handler-scripts", const=True),
    Setting("handler_extension", as_extension_list, (".wsgi",),
            "File name extension of handler scripts; repeatable. Default: .wsgi (replaced by "
            "the first --handler-extension given).",
            express=None, flag="--handler-extension", metavar="EXT", repeatable=True),
    Setting("cgi_alias", as_cgi_alias_list, (),
            "Run the executables under directory PATH (or the one program PATH) at URL as CGI "
            "scripts (ScriptAlias); repeatable.",
            express=None, flag="--cgi-alias", metavar=("URL", "PATH"), repeatable=True, nargs=2),
    Setting("cgi_script", as_cgi_script_list, (),
            "Run a WSGI script as a CGI program, a new Python process per request (the mod_cgi "
            "way): /URL=APP.wsgi, or APP.wsgi mounted at --mount-point; repeatable.",
            express=None, flag="--cgi-script", metavar="[/URL=]APP.wsgi", repeatable=True,
            item_convert=as_cgi_script),
    Setting("cgi_timeout", as_seconds, 60.0,
            "A CGI program that produces no output (and takes no input) for this long is "
            "killed with its process group; 504 when it had not sent its headers yet.",
            express=None, flag="--cgi-timeout", metavar="SECONDS"),
    Setting("cgi_max_processes", as_positive_int, 16,
            "Most CGI programs running at once per server process; a request beyond it waits "
            "up to --cgi-timeout for a slot, then gets 503.",
            express=None, flag="--cgi-max-processes", metavar="N"),
    Setting("access", as_access_list, (),
            "Access rules for the URL prefix MOUNT, as Apache directives separated by ';': "
            "'Order allow,deny|deny,allow', 'Allow from all|IP|CIDR|partial-IP', 'Deny from "
            "...', 'Require all granted|denied', 'Require ip ...'. Denied clients get 403. "
            "Repeatable; see docs/static-cgi-handlers.md.",
            express=None, flag="--access", metavar="MOUNT=RULES", repeatable=True,
            item_convert=as_access),
    # -- mod_python handlers (docs/mod_python.md)
    Setting("python_handler", as_python_handler_list, (),
            "Run a mod_python handler at URL, like 'SetHandler mod_python' + 'PythonHandler "
            "module::handler' (::handler defaults to handler); without /URL= at --mount-point; "
            "repeatable.",
            express=None, flag="--python-handler", metavar="[/URL=]MODULE[::HANDLER]",
            repeatable=True, item_convert=as_python_handler),
    Setting("python_path", as_python_path_list, (),
            "Put DIR first on sys.path before mod_python handlers are imported (PythonPath); "
            "repeatable.",
            express=None, flag="--python-path", metavar="DIR", repeatable=True),
    Setting("python_option", as_python_option_list, (),
            "An option handlers read with req.get_options() (PythonOption KEY VALUE); "
            "repeatable.",
            express=None, flag="--python-option", metavar="KEY=VALUE", repeatable=True,
            item_convert=as_python_option),
    Setting("mod_python_shim", as_bool, False,
            "Make 'from mod_python import apache, util' import pywsgi's mod_python "
            "compatibility modules (off by default so a real mod_python is never shadowed).",
            express=None, flag="--mod-python-shim", const=True),
    # -- timeouts (seconds)
    Setting("graceful_timeout", as_seconds, 15.0,
            "On SIGTERM or a graceful restart, how long in-flight requests may take to finish "
            "before the process is killed.",
            express="--graceful-timeout", flag="--graceful-timeout", metavar="SECONDS"),
    Setting("request_timeout", as_seconds, 0.0,
            "Interrupt a request whose application runs longer than this: RequestTimeout in its "
            "thread, 504, its stack in the error log; if it goes on for --interrupt-timeout, "
            "recycle the process. 0 = no limit. With --daemon: the group's request-timeout=.",
            express="--request-timeout", flag="--request-timeout", metavar="SECONDS"),
    Setting("interrupt_timeout", as_seconds, 10.0,
            "How long an interrupted request may take to return before its process is "
            "recycled; 0 = recycle at once. With --daemon: the group's interrupt-timeout=.",
            express="--interrupt-timeout", flag="--interrupt-timeout", metavar="SECONDS"),
    Setting("keep_alive_timeout", as_seconds, 2.0,
            "How long an idle keep-alive connection is held open waiting for the next request.",
            express="--keep-alive-timeout", flag="--keep-alive-timeout", metavar="SECONDS"),
    Setting("header_timeout", as_seconds, 20.0,
            "Time allowed to receive the request line and headers (from accept, or from the "
            "first byte of a keep-alive request); like mod_reqtimeout's header=20-40.",
            express="--header-timeout", flag="--header-timeout", metavar="SECONDS"),
    Setting("header_max_timeout", as_seconds, 40.0,
            "The header deadline grows with the data received, up to this many seconds.",
            express=None, flag="--header-max-timeout", metavar="SECONDS"),
    Setting("header_min_rate", as_non_negative_int, 500,
            "Every BYTES received extend the header deadline by one second (mod_reqtimeout "
            "MinRate); 0 disables the extension.",
            express=None, flag="--header-min-rate", metavar="BYTES"),
    Setting("body_timeout", as_seconds, 60.0,
            "Time allowed between reads of the request body.",
            express="--body-timeout", flag="--body-timeout", metavar="SECONDS"),
    Setting("body_buffer_size", as_byte_size, 64 * 1024,
            "Request bodies up to this size are read whole by the reactor before a worker "
            "thread is used, so a client trickling a small body holds no thread; 0 disables.",
            express=None, flag="--body-buffer-size", metavar="BYTES"),
    Setting("socket_timeout", as_seconds, 60.0,
            "Time allowed for any other socket read or write to make progress.",
            express="--socket-timeout", flag="--socket-timeout", metavar="SECONDS"),
    Setting("send_min_rate", as_non_negative_float, 100.0,
            "The slowest a client may read a response, in bytes per second averaged over each "
            "--socket-timeout; a slower one is dropped (a trickle would hold its connection "
            "for hours). 0: only --socket-timeout applies.",
            express=None, flag="--send-min-rate", metavar="BYTES/S"),
    Setting("send_buffer_size", as_byte_size, 256 * KiB,
            "Response bytes held per connection for a client that reads slowly: the reactor "
            "sends them while the thread serves others, and a streamed response is pulled "
            "from the application only while less than this is pending (resumed below a "
            "quarter of it). Accepts 64k, 1M.",
            express=None, flag="--send-buffer-size", metavar="BYTES"),
    # -- limits
    Setting("limit_request_line", as_positive_int, 8190,
            "Longest request line in bytes (longer: 414), like Apache's LimitRequestLine.",
            express=None, flag="--limit-request-line", metavar="BYTES"),
    Setting("limit_request_fields", as_positive_int, 100,
            "Most request header fields (more: 431), like Apache's LimitRequestFields.",
            express=None, flag="--limit-request-fields", metavar="N"),
    Setting("limit_request_field_size", as_positive_int, 8190,
            "Longest request header field in bytes (longer: 431), like LimitRequestFieldSize.",
            express=None, flag="--limit-request-field-size",
            metavar="BYTES"),
    Setting("limit_request_head", as_byte_size, 64 * KiB,
            "Largest request head (request line and all header fields) in bytes (larger: 431).",
            express=None, flag="--limit-request-head", metavar="BYTES"),
    Setting("limit_request_body", as_byte_size, 1024 * MiB,
            "Largest request body in bytes (larger: 413, answered before the application runs "
            "when the size is known, else raised from wsgi.input as an exception whose status "
            "is 413); 0 means unlimited. Accepts 10M, 64k, 1G. Default: 1 GiB, as Apache "
            "2.4.54+ and waitress.",
            express="--limit-request-body", flag="--limit-request-body", metavar="BYTES"),
    Setting("maximum_requests", as_non_negative_int, 0,
            "Recycle a process after it has served this many requests (with up to 10 % random "
            "jitter, so processes do not all restart at once): it stops accepting, finishes "
            "what it has, exits, and the master starts a new one; 0 = never. For daemon "
            "process groups use maximum-requests= in --daemon-process.",
            express="--maximum-requests", flag="--maximum-requests", metavar="N"),
    Setting("max_clients", as_optional_positive_int, None,
            "Most simultaneous client connections per process. Default: what the open-file "
            "limit allows (raised at start from its soft to its hard value), less a reserve "
            "for everything else the process opens (docs/security.md); a larger value is "
            "lowered to that, with a warning. At the cap, idle keep-alive connections, then "
            "connections that have sent nothing, are closed to make room; a new connection "
            "is answered 503 only when there is none.",
            express="--max-clients", flag="--max-clients", metavar="N"),
    # -- logging
    Setting("log_level", as_log_level, "info",
            "Error log level: debug, info, warn, error or crit.",
            express="--log-level", flag="--log-level", metavar="LEVEL"),
    Setting("access_log", as_access_log, None,
            "Write an access log line per request to PATH ('-' for stdout), in Apache's "
            "combined format unless --access-log-format says otherwise; written by the core, "
            "buffered per process (flushed at least 4 times a second); SIGUSR1 reopens it.",
            express="--access-log", flag="--access-log", metavar="PATH"),
    Setting("access_log_format", as_optional_str, None,
            "Apache LogFormat for the access log: %h %a %l %u %t %r %s %>s %b %B %D %T %m %U %q "
            "%H %P %{Header}i %{c}a %%. Default: the combined format "
            "'%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"'.",
            express="--access-log-format", flag="--access-log-format", metavar="FORMAT"),
    Setting("error_log", as_optional_path, None,
            "Write the error log to this file (appended) instead of stderr: every line the "
            "server logs (the core's bad-request, limit and timeout lines included) and what "
            "the application prints to sys.stdout or sys.stderr. SIGUSR1 reopens it.",
            express=None, flag="--error-log", metavar="PATH"),
    # -- what the application sees
    Setting("server_name", as_optional_str, None,
            "SERVER_NAME for requests without a Host header. Default: the --host value "
            "('localhost' when listening on all interfaces).",
            express="--server-name", flag="--server-name", metavar="NAME"),
    Setting("url_scheme", as_url_scheme, "http",
            "wsgi.url_scheme: http, or https behind a TLS-terminating proxy.",
            express=None, flag="--url-scheme", metavar="SCHEME"),
    Setting("allow_encoded_slashes", as_encoded_slashes, "off",
            "An encoded slash (%2F) in the request path, as Apache's AllowEncodedSlashes: "
            "off answers 404 and the application never sees it; on decodes it like any other "
            "escape (a path separator, also for routing); nodecode accepts it and leaves it "
            "as %2F in PATH_INFO (the other escapes are decoded), so /api/a%2Fb reaches the "
            "application as one segment.",
            express=None, flag="--allow-encoded-slashes", metavar="off|on|nodecode"),
    Setting("server_software", as_optional_str, None,
            "SERVER_SOFTWARE and the Server response header. Default: pywsgi/VERSION.",
            express=None, flag="--server-software", metavar="TEXT"),
    # -- configuration sources and logging destinations (docs/configuration.md)
    Setting("log_to_terminal", as_bool, False,
            "Send the error log to stderr and the access log (when one is enabled with "
            "--access-log) to stdout, even when --error-log / --access-log name files; "
            "handy to override a configuration file while debugging.",
            express="--log-to-terminal", flag="--log-to-terminal", const=True),
    # -- operations (docs/operations.md)
    Setting("pid_file", as_optional_path, None,
            "Write the master's pid to PATH once listening (atomically) and remove it on exit; "
            "refuse to start while the file names a running process (a stale one is replaced).",
            express="--pid-file", flag="--pid-file", metavar="PATH"),
    Setting("user", as_optional_user_or_group, None,
            "Run the server and daemon processes as this user (name or uid) when started as "
            "root: sockets and log files are opened first, the application is loaded after "
            "the switch. The master stays root.",
            express="--user", flag="--user", metavar="NAME|UID"),
    Setting("group", as_optional_user_or_group, None,
            "Run the server and daemon processes as this group (name or gid); default: the "
            "--user's primary group.",
            express="--group", flag="--group", metavar="NAME|GID"),
    Setting("unix_socket", as_optional_path, None,
            "Listen on a UNIX stream socket at PATH instead of TCP (--host/--port are then not "
            "used), e.g. behind nginx: proxy_pass http://unix:PATH. A stale socket file is "
            "replaced, one a server still listens on is refused; removed on exit.",
            express=None, flag="--unix-socket", metavar="PATH"),
    Setting("unix_socket_mode", as_file_mode, 0o660,
            "Permissions of the --unix-socket file, in octal (its owner is --user/--group "
            "when given). Default: 0660.",
            express=None, flag="--unix-socket-mode", metavar="MODE"),
    Setting("reload_on_changes", as_bool, False,
            "Development aid: the master checks about once a second whether the script(s) or "
            "any module the application imported changed on disk, and if so does a graceful "
            "restart (as SIGHUP does).",
            express="--reload-on-changes", flag="--reload-on-changes", const=True),
    # -- Apache configuration import (docs/migrating-from-mod_wsgi.md)
    Setting("apache_config", as_optional_path, None,
            "Read the settings from an Apache + mod_wsgi configuration file (Listen, "
            "ServerName, DocumentRoot, Alias, ScriptAlias, WSGIScriptAlias, WSGIDaemonProcess, "
            "<Directory>/<Location> access rules, <VirtualHost>, Include, ...); command-line "
            "flags override what it sets. Unsupported directives are reported with file:line.",
            express=None, flag="--apache-config", metavar="HTTPD.CONF"),
    Setting("apache_root", as_optional_path, None,
            "Find the absolute paths of --apache-config under DIR, like a chroot: "
            "/var/www/app.wsgi is read as DIR/var/www/app.wsgi, so a site copied elsewhere "
            "runs with its configuration unchanged.",
            express=None, flag="--apache-root", metavar="DIR"),
    Setting("cgi_extension", as_optional_extension_list, (),
            "Run the files with this extension under the document root and alias directories "
            "as CGI programs, like 'AddHandler cgi-script .cgi' with 'Options ExecCGI'; other "
            "files stay static. Repeatable.",
            express=None, flag="--cgi-extension", metavar="EXT", repeatable=True),
    Setting("mount_process_group", as_mount_process_group_list, (),
            "Run the mount at URL in daemon process group GROUP (WSGIProcessGroup inside "
            "<Location>, or WSGIScriptAlias ... process-group=GROUP); repeatable.",
            flag="--mount-process-group", metavar="/URL=GROUP", repeatable=True,
            item_convert=as_mount_process_group),
    Setting("virtual_host", as_virtual_host_list, (),
            "Name-based virtual hosts (<VirtualHost> with ServerName/ServerAlias): a list of "
            "tables of per-host settings (server_name, server_alias, document_root, url_alias, "
            "script_alias, cgi_alias, access, python_handler, allow_encoded_slashes); a request "
            "goes to the host its Host header names, or to the first one. Python API / "
            "configuration files only.",
            express=None, flag=None),
    # -- trusted proxies (docs/proxies.md)
    Setting("trust_proxy", as_trust_proxy_list, (),
            "A reverse proxy or load balancer whose forwarding headers are believed: an IPv4/"
            "IPv6 address, a CIDR network, or 'unix' for peers on a UNIX socket; repeatable. "
            "From such a peer REMOTE_ADDR, wsgi.url_scheme (and, if enabled, the host) come "
            "from the headers named by --trust-proxy-header; from any other peer those headers "
            "are removed before the application sees them (like mod_remoteip).",
            express=None, flag="--trust-proxy", metavar="CIDR", repeatable=True,
            item_convert=as_trust_proxy),
    Setting("trust_proxy_header", as_trust_proxy_header_list, (),
            "A forwarding header honoured from trusted proxies: x-forwarded-for, "
            "x-forwarded-proto, x-forwarded-host, x-forwarded-port or forwarded (RFC 7239); "
            "repeatable. Default: x-forwarded-for and x-forwarded-proto. 'none' honours none "
            "(with --proxy-protocol alone).",
            express=None, flag="--trust-proxy-header", metavar="NAME", repeatable=True,
            item_convert=as_trust_proxy_header),
    Setting("proxy_protocol", as_bool, False,
            "Every connection starts with a PROXY protocol v1 or v2 header (haproxy, AWS NLB, "
            "...) carrying the client's address; only --trust-proxy peers may connect, and a "
            "connection from another peer or with a malformed header is closed.",
            express=None, flag="--proxy-protocol", const=True),
    # -- server status (docs/server-status.md)
    Setting("server_status", as_status_url, None,
            "Serve the live server status at URL (e.g. /server-status): an HTML page with "
            "live charts, URL?json for JSON, URL?prometheus (or URL/metrics) for Prometheus. "
            "Answered by the server process for every process, never by the application.",
            express="--server-status", flag="--server-status", metavar="URL"),
    Setting("server_status_allow", as_status_allow_list, (),
            "Client address or CIDR network allowed to see --server-status; repeatable. "
            "Default: loopback only (127.0.0.0/8 and ::1); others get 403.",
            express=None, flag="--server-status-allow", metavar="CIDR", repeatable=True,
            item_convert=as_status_allow),
    # -- HTTPS (docs/tls.md)
    Setting("https_port", as_optional_port, None,
            "Also serve HTTPS on this TCP port (on --host), with the certificate of "
            "--ssl-certificate-file; TLS is done in the core (OpenSSL, loaded at run time).",
            express="--https-port", flag="--https-port", metavar="PORT"),
    Setting("ssl_certificate_file", as_optional_path, None,
            "The server's certificate (PEM), maybe followed by its intermediate certificates "
            "(a 'fullchain.pem'), like SSLCertificateFile.",
            express="--ssl-certificate-file", flag="--ssl-certificate-file", metavar="PATH"),
    Setting("ssl_certificate_key_file", as_optional_path, None,
            "The certificate's private key (PEM), like SSLCertificateKeyFile. Read by the "
            "master before any --user takes effect, so it may be readable by root only.",
            express="--ssl-certificate-key-file", flag="--ssl-certificate-key-file",
            metavar="PATH"),
    Setting("ssl_certificate_chain_file", as_optional_path, None,
            "Intermediate CA certificates (PEM) sent after the certificate, like "
            "SSLCertificateChainFile.",
            express="--ssl-certificate-chain-file", flag="--ssl-certificate-chain-file",
            metavar="PATH"),
    Setting("ssl_certificate_key_password_file", as_optional_path, None,
            "A file whose first line is the passphrase of an encrypted private key (nginx's "
            "ssl_password_file); pywsgi never prompts for one.",
            express=None, flag="--ssl-certificate-key-password-file", metavar="PATH"),
    Setting("ssl_ca_certificate_file", as_optional_path, None,
            "CA certificates (PEM) that client certificates must chain to, like "
            "SSLCACertificateFile; used with --ssl-verify-client.",
            express="--ssl-ca-certificate-file", flag="--ssl-ca-certificate-file",
            metavar="PATH"),
    Setting("ssl_verify_client", as_ssl_verify_client, "none",
            "Client certificates, like SSLVerifyClient: none; optional (asked for, and checked "
            "when given); require (the handshake fails without a valid one).",
            express=None, flag="--ssl-verify-client", metavar="none|optional|require"),
    Setting("https_only", as_bool, False,
            "Answer every plain HTTP request with 301 to the same URL on --https-port.",
            express="--https-only", flag="--https-only", const=True),
    Setting("hsts_policy", as_hsts_policy, None,
            "Send Strict-Transport-Security with this value on HTTPS responses, e.g. "
            "'max-age=31536000; includeSubDomains'.",
            express="--hsts-policy", flag="--hsts-policy", metavar="VALUE"),
    Setting("ssl_protocols", as_ssl_protocols, PROTOCOLS,
            "TLS versions offered: 'TLSv1.2 TLSv1.3' (the default), 'TLSv1.3', or 'all'; "
            "TLS 1.1 and older are never offered.",
            express=None, flag="--ssl-protocols", metavar="PROTOCOLS"),
    Setting("ssl_ciphers", as_ssl_ciphers, MOZILLA_INTERMEDIATE,
            "OpenSSL cipher list for TLS 1.2, like SSLCipherSuite. Default: Mozilla's "
            "'intermediate' list (ECDHE and DHE with AES-GCM or ChaCha20-Poly1305).",
            express=None, flag="--ssl-ciphers", metavar="CIPHERS"),
    Setting("ssl_library", as_optional_path, None,
            "The libssl to load (e.g. /opt/openssl/lib/libssl.so.3). Default: the one Python's "
            "ssl module uses, else the system's libssl.so.3 or libssl.so.1.1.",
            express=None, flag="--ssl-library", metavar="PATH"),
    Setting("ssl_environ", as_bool, False,
            "Put mod_ssl's SSL_* variables (SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_S_DN, "
            "SSL_CLIENT_VERIFY, ...) in the environ of HTTPS requests, like SSLOptions "
            "+StdEnvVars.",
            express="--ssl-environ", flag="--ssl-environ", const=True),
    # -- behind a load balancer (docs/deploying.md); no Apache or mod_wsgi-express counterpart
    Setting("health_url", as_probe_url, None,
            "Answer this URL (e.g. /healthz) in the server process itself, no application "
            "call and no thread: 200 while the process serves (a liveness probe, the Docker "
            "image's HEALTHCHECK). GET or HEAD, from loopback, a UNIX-socket client or "
            "--health-allow; others get 403. No Apache counterpart.",
            express=None, flag="--health-url", metavar="URL"),
    Setting("ready_url", as_probe_url, None,
            "Answer this URL (e.g. /readyz) in the server process itself: 200 when every mount "
            "and daemon process group can take requests, 503 while a daemon group has no live "
            "process (starting, or restarting all of its processes) and from the first instant "
            "of a graceful stop (SIGTERM), so a load balancer or Kubernetes stops sending "
            "before the server stops accepting. Allowed like --health-url. No Apache "
            "counterpart.",
            express=None, flag="--ready-url", metavar="URL"),
    Setting("health_allow", as_status_allow_list, (),
            "A client address or CIDR network that may ask --health-url and --ready-url besides "
            "loopback and UNIX-socket clients (who always may); repeatable. A kubelet probes "
            "from its node's address.",
            express=None, flag="--health-allow", metavar="CIDR", repeatable=True,
            item_convert=as_status_allow),
    Setting("shutdown_delay", as_seconds, 0.0,
            "On SIGTERM, keep accepting and serving for this long, with --ready-url answering "
            "503 and every response closing its connection, before the graceful stop proper "
            "(stop accepting, serve what waits in the listen backlog, finish in-flight requests "
            "within --graceful-timeout): the time a load balancer or Kubernetes needs to stop "
            "sending, so no preStop hook is needed. No Apache counterpart.",
            express=None, flag="--shutdown-delay", metavar="SECONDS"),
    # -- internal: set by the master for each child
    Setting("process_index", as_non_negative_int, 0,
            "Index (0..processes-1) of the server child; set by the master.",
            express=None, flag=None, internal=True),
)

SETTINGS_BY_NAME: Dict[str, Setting] = {s.name: s for s in SETTINGS}

# The sections of `pywsgi --help`, in order: (title, one line about it, setting names). Kept
# beside the table rather than in it; a new setting's flag goes into one of them (a flag in none
# is listed under "other options", which tests/test_cli.py refuses).
HELP_SECTIONS: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("serving", "what to serve and where to listen",
     ("host", "port", "unix_socket", "unix_socket_mode", "listen_backlog", "mount_point",
      "script_alias", "callable_object")),
    ("processes and threads", "how many run the application; docs/operations.md",
     ("processes", "threads", "max_clients", "maximum_requests", "reload_on_changes")),
    ("limits", "request sizes; over them: 413, 414 or 431, like Apache's LimitRequest*",
     ("limit_request_line", "limit_request_fields", "limit_request_field_size",
      "limit_request_head", "limit_request_body", "body_buffer_size", "send_buffer_size")),
    ("timeouts", "seconds; the header ones work like mod_reqtimeout",
     ("header_timeout", "header_max_timeout", "header_min_rate", "body_timeout",
      "socket_timeout", "send_min_rate", "keep_alive_timeout", "graceful_timeout",
      "request_timeout", "interrupt_timeout")),
    ("static files", "DocumentRoot and Alias; docs/static-files.md",
     ("document_root", "url_alias", "directory_index", "follow_symlinks", "cache_control",
      "precompressed", "access")),
    ("handler scripts and CGI", "docs/static-cgi-handlers.md",
     ("handler_scripts", "handler_extension", "cgi_alias", "cgi_script", "cgi_extension",
      "cgi_timeout", "cgi_max_processes")),
    ("mod_python handlers", "docs/mod_python.md",
     ("python_handler", "python_path", "python_option", "mod_python_shim")),
    ("daemon mode", "mod_wsgi's WSGIDaemonProcess, docs/daemon-mode.md; pywsgi never detaches "
     "from the terminal",
     ("daemon", "daemon_process", "process_group", "mount_process_group", "server_processes",
      "server_threads")),
    ("logs", "the error log goes to stderr unless --error-log",
     ("log_level", "error_log", "access_log", "access_log_format", "log_to_terminal")),
    ("https", "TLS in the core, like mod_ssl; docs/tls.md",
     ("https_port", "ssl_certificate_file", "ssl_certificate_key_file",
      "ssl_certificate_chain_file", "https_only", "hsts_policy")),
    ("tls options", "protocols, client certificates, the environ; docs/tls.md",
     ("ssl_protocols", "ssl_ciphers", "ssl_verify_client", "ssl_ca_certificate_file",
      "ssl_environ", "ssl_certificate_key_password_file", "ssl_library")),
    ("proxies", "behind a reverse proxy or load balancer; docs/proxies.md",
     ("trust_proxy", "trust_proxy_header", "proxy_protocol")),
    ("what the application sees", "in the WSGI environ",
     ("server_name", "url_scheme", "server_software", "application_group",
      "allow_encoded_slashes")),
    ("operations", "docs/operations.md, docs/server-status.md",
     ("pid_file", "user", "group", "server_status", "server_status_allow")),
    ("behind a load balancer", "health, readiness and stops that lose nothing; "
     "docs/deploying.md",
     ("health_url", "ready_url", "health_allow", "shutdown_delay")),
    ("configuration", "files and Apache configuration; docs/configuration.md",
     ("apache_config", "apache_root")),
)


def defaults() -> Settings:
    """All settings at their defaults, derived values filled in."""
    return build()


def convert(name: str, value: Any) -> Any:
    """Convert one raw value; ConfigError naming the setting if it is bad."""
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None:
        raise ConfigError(f"unknown setting {name!r}" + did_you_mean(name))
    try:
        return setting.convert(value)
    except ValueError as exc:
        flag = f" ({setting.flag})" if setting.flag else ""
        raise ConfigError(f"bad value for setting '{name}'{flag}: {exc}") from None


def build(values: Optional[Dict[str, Any]] = None, **overrides: Any) -> Settings:
    """Defaults + values + overrides, converted and validated, with derived values filled in:
    the frozen Settings (typed.py) everything else reads.

    Unknown names and bad values raise ConfigError naming the setting. Values of ``None`` for a
    setting whose default is not None mean "not given" (that is how argparse reports an absent
    flag), so the default applies.
    """
    raw: Dict[str, Any] = {}
    for source in (values or {}, overrides):
        for name, value in source.items():
            if name not in SETTINGS_BY_NAME:
                raise ConfigError(f"unknown setting {name!r}" + did_you_mean(name))
            if value is None and SETTINGS_BY_NAME[name].default is not None:
                continue
            raw[name] = value

    settings: Dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in raw:
            settings[setting.name] = convert(setting.name, raw[setting.name])
        elif isinstance(setting.default, tuple):
            settings[setting.name] = list(setting.default)
        else:
            settings[setting.name] = setting.default

    if settings["server_name"] is None:
        host = settings["host"]
        settings["server_name"] = "localhost" if host in WILDCARD_HOSTS else host
    if settings["proxy_protocol"] and not settings["trust_proxy"]:
        raise ConfigError("--proxy-protocol needs --trust-proxy: the peers allowed to send "
                          "PROXY headers (e.g. --trust-proxy 10.0.0.0/8)")
    _check_https(settings)
    if settings["health_url"] and settings["health_url"] == settings["ready_url"]:
        raise ConfigError(f"--health-url and --ready-url are both {settings['health_url']}: "
                          f"liveness and readiness need URLs of their own")
    if settings["server_software"] is None:
        settings["server_software"] = f"pywsgi/{__version__}"
    if settings["log_to_terminal"]:  # mod_wsgi-express --log-to-terminal
        settings["error_log"] = None
        if settings["access_log"] is not None:
            settings["access_log"] = "-"
    return Settings(**settings)


def _check_https(settings: Dict[str, Any]) -> None:
    """The HTTPS settings hang together: a port and a certificate with its key, or none."""
    hosts = [h for h in settings["virtual_host"] if h.get("ssl_certificate_file")]
    for host in hosts:
        if not host.get("ssl_certificate_key_file"):
            raise ConfigError(f"virtual host {host.get('server_name') or '(default)'}: "
                              f"ssl_certificate_file needs ssl_certificate_key_file too")
    if settings["https_port"] is None:
        for name in ("ssl_certificate_file", "https_only"):
            if settings[name] or (name == "ssl_certificate_file" and hosts):
                raise ConfigError(f"--{name.replace('_', '-')} is set but --https-port is not: "
                                  f"say which port serves HTTPS (e.g. --https-port 8443)")
        return
    if not settings["ssl_certificate_file"] and not hosts:
        raise ConfigError("--https-port needs a certificate: --ssl-certificate-file CERT.pem "
                          "--ssl-certificate-key-file KEY.pem (docs/tls.md)")
    if settings["ssl_certificate_file"] and not settings["ssl_certificate_key_file"]:
        raise ConfigError("--ssl-certificate-file needs --ssl-certificate-key-file (the "
                          "certificate's private key)")
    if settings["https_port"] == settings["port"] and settings["port"] != 0 \
            and not settings["unix_socket"]:
        raise ConfigError(f"--https-port {settings['https_port']} is --port too: HTTPS needs a "
                          f"port of its own")
    if settings["ssl_verify_client"] != "none" and not settings["ssl_ca_certificate_file"]:
        raise ConfigError(f"--ssl-verify-client {settings['ssl_verify_client']} needs "
                          f"--ssl-ca-certificate-file: the CAs client certificates must "
                          f"chain to")


def application_group_for(settings: Settings, mount_point: str) -> str:
    """mod_wsgi's default application group, %{RESOURCE}: 'SERVER[:PORT]|MOUNT'.

    The port is left out for 80 and 443, as mod_wsgi does; '%{GLOBAL}' is the empty group.
    """
    group = settings.application_group
    if group is not None:
        return "" if group == "%{GLOBAL}" else group
    host = settings.server_name
    port = settings.port
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port not in (80, 443):
        host = f"{host}:{port}"
    return f"{host}|{mount_point}"


def describe() -> Iterable[str]:
    """One line per setting: name, default, mod_wsgi-express option (for docs)."""
    for s in SETTINGS:
        yield f"{s.name:26} default={s.default!r:14} express={s.express or '-'}"


def close_match(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate nearest to a mistyped word, or None: pywsgi's one "did you mean" (setting
    names for the API and files here, command-line flags in cli.py)."""
    import difflib
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return close[0] if close else None


def did_you_mean(name: str) -> str:
    close = close_match(name, SETTINGS_BY_NAME)
    return f" (did you mean {close!r}?)" if close else ""
