"""The built settings: one frozen object with a typed attribute per row of the settings table.

``settings.build()`` makes it once from the sources (every value converted by its row's
converter, derived values filled in); everything after reads ``settings.port``,
``settings.threads`` ... A name that is not a setting is an AttributeError that names it (with
the nearest setting), an assignment is an error, and settings derived from others (the server
processes' in daemon mode, a virtual host's, a daemon group's) are copies with changes:
``settings.replace(threads=15)``.

The fields are declared here, by hand, with their types, so that mypy checks every reader; the
table (settings.py) stays the one place for names, defaults, converters and help.
tests/unit/test_settings.py keeps the two in step: the same names in the same order, each
declared type the converter's return type, each default of its declared type. A new setting is a
row in the table and a line here.

Frozen means no field can be set again; a list value is the converter's list, and no reader
changes it in place (copy it: ``list(settings.url_alias) + [...]``).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from pywsgi.config.daemon_groups import DaemonGroup
from pywsgi.handlers.access import AccessRules

__all__ = ["Settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    # -- where to listen
    host: str
    port: int
    listen_backlog: int
    # -- processes and threads
    processes: int
    threads: int
    # -- the application(s)
    callable_object: str
    mount_point: str
    script_alias: List[Tuple[str, str]]                 # (mount point, script or module spec)
    application_group: Optional[str]
    process_group: str
    # -- daemon mode
    daemon: bool
    daemon_process: Sequence[DaemonGroup]
    server_processes: int
    server_threads: int
    # -- static files, handler scripts, CGI
    document_root: Optional[str]
    url_alias: List[Tuple[str, str]]                    # (URL, path)
    directory_index: str
    follow_symlinks: bool
    cache_control: Optional[str]
    precompressed: bool
    handler_scripts: bool
    handler_extension: List[str]
    cgi_alias: List[Tuple[str, str]]                    # (URL, path)
    cgi_script: List[Tuple[Optional[str], str]]         # (URL or None: mount_point, path)
    cgi_timeout: float
    cgi_max_processes: int
    access: List[Tuple[str, AccessRules]]               # (URL prefix, its rules)
    # -- mod_python
    python_handler: List[Tuple[Optional[str], str, str]]    # (URL or None, module, handler)
    python_path: List[str]
    python_option: List[Tuple[str, str]]
    mod_python_shim: bool
    # -- timeouts
    graceful_timeout: float
    request_timeout: float
    interrupt_timeout: float
    keep_alive_timeout: float
    header_timeout: float
    header_max_timeout: float
    header_min_rate: int
    body_timeout: float
    body_buffer_size: int
    socket_timeout: float
    send_min_rate: float
    send_buffer_size: int
    # -- limits
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_head: int
    limit_request_body: int
    maximum_requests: int
    max_clients: Optional[int]                          # None: what the open-file limit allows
    # -- logging
    log_level: str
    access_log: Optional[str]                           # a path, or '-' for stdout
    access_log_format: Optional[str]                    # None: Apache's combined format
    error_log: Optional[str]                            # None: stderr
    # -- what the application sees
    server_name: str                                    # derived from host when not given
    url_scheme: str
    allow_encoded_slashes: str
    server_software: str                                # derived: pywsgi/VERSION
    log_to_terminal: bool
    # -- operations
    pid_file: Optional[str]
    user: Optional[str]
    group: Optional[str]
    unix_socket: Optional[str]
    unix_socket_mode: int
    reload_on_changes: bool
    # -- Apache configuration import
    apache_config: Optional[str]
    apache_root: Optional[str]
    cgi_extension: List[str]
    mount_process_group: List[Tuple[str, str]]          # (URL, group name)
    virtual_host: List[Dict[str, Any]]                  # per host: VIRTUAL_HOST_SETTINGS
    # -- trusted proxies
    trust_proxy: List[str]
    trust_proxy_header: List[str]
    proxy_protocol: bool
    # -- server status
    server_status: Optional[str]
    server_status_allow: List[str]
    # -- HTTPS (docs/tls.md)
    https_port: Optional[int]                           # None: no HTTPS
    ssl_certificate_file: Optional[str]
    ssl_certificate_key_file: Optional[str]
    ssl_certificate_chain_file: Optional[str]
    ssl_certificate_key_password_file: Optional[str]
    ssl_ca_certificate_file: Optional[str]
    ssl_verify_client: str                              # none, optional or require
    https_only: bool
    hsts_policy: Optional[str]
    ssl_protocols: List[str]                            # of TLSv1.2, TLSv1.3
    ssl_ciphers: str
    ssl_library: Optional[str]
    ssl_environ: bool
    # -- behind a load balancer (docs/deploying.md)
    health_url: Optional[str]
    ready_url: Optional[str]
    health_allow: List[str]
    shutdown_delay: float
    # -- internal
    process_index: int

    def replace(self, **changes: Any) -> Settings:
        """A copy with these settings changed (the values typed already, as build() makes
        them); an unknown name is an AttributeError."""
        for name in changes:
            if name not in _NAMES:
                raise AttributeError(_no_such_setting(name))
        return dataclasses.replace(self, **changes)

    if not TYPE_CHECKING:   # for mypy an unknown name stays an error, not Any
        def __getattr__(self, name: str) -> Any:
            # Only reached for a name that is neither a field nor a method.
            if name.startswith("__"):
                raise AttributeError(name)   # copy, pickle and friends probing for hooks
            raise AttributeError(_no_such_setting(name))


_NAMES: Tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Settings))


def _no_such_setting(name: str) -> str:
    import difflib  # (here: only a misspelt name needs it)

    close = difflib.get_close_matches(name, _NAMES, n=1)
    return f"no setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
