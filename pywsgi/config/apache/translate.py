"""Importing an Apache + mod_wsgi configuration: ``pywsgi --apache-config httpd.conf``.

    raw, target, warnings = read("httpd.conf", root=None)

``raw`` maps setting names of the settings table (config/settings.py) to raw values in their
command-line form (strings, lists of strings), ready for ``settings.build``; ``target`` is always
None (an Apache configuration mounts everything through directives); ``warnings`` are one line
each, ``httpd.conf:12: WSGIRestrictEmbedded is not supported, ignored``, for every directive that
matters but is not carried over. Directives that mean nothing here (LoadModule, User, the MPM
sizes, ...) are skipped quietly. What cannot be carried over without weakening access control (an
access rule that cannot be translated, a deny rule in a section pywsgi cannot map) raises
ApacheConfigError: refusing to start is safer than serving what Apache would have refused.

``parse()`` (syntax.py) turns the files into a tree of ``Directive``; ``translate()`` walks the
tree and produces the settings. ``<Directory PATH>`` blocks are mapped to the URL(s) that serve
PATH (DocumentRoot, Alias, ScriptAlias, WSGIScriptAlias targets), ``<Location URL>`` blocks apply
to URL directly; each URL gets the rules of the most specific block (Apache merges sections so
that the deeper one wins). Relative paths are relative to ServerRoot, which defaults to the
directory of the main configuration file. See docs/migrating-from-mod_wsgi.md.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from pywsgi.config.apache.conditionals import flatten, flatten_conditionals, module_enabled
from pywsgi.config.apache.mod_ssl import QUIET as _QUIET_SSL
from pywsgi.config.apache.mod_ssl import ModSSL, vhost_port
from pywsgi.config.apache.syntax import ApacheConfigError, Directive, Parser, parse
from pywsgi.config.daemon_groups import OPTIONS as DAEMON_OPTIONS
from pywsgi.handlers.access import AccessRules

__all__ = ["ApacheConfigError", "Directive", "parse", "translate", "read"]


# ---------------------------------------------------------------- translation

# Directives that have no meaning for pywsgi: skipped quietly (lower case).
_QUIET = {
    "loadmodule", "loadfile", "user", "group", "serveradmin", "serverroot", "pidfile", "mutex",
    "defaultruntimedir", "servertokens", "serversignature", "traceenable", "hostnamelookups",
    "usecanonicalname", "keepalive", "maxkeepaliverequests", "startservers", "minspareservers",
    "maxspareservers", "minsparethreads", "maxsparethreads", "threadsperchild", "threadlimit",
    "serverlimit", "maxrequestworkers", "maxclients", "maxconnectionsperchild",
    "maxrequestsperchild", "threadstacksize", "listenbacklog", "typesconfig", "adddefaultcharset",
    "enablesendfile", "enablemmap", "namevirtualhost", "accessfilename", "wsgisocketprefix",
    "wsgipythonoptimize", "wsgilazyinitialization", "wsgichunkedrequest", "wsgipassauthorization",
    "wsgiscriptreloading", "wsgiacceptmutex", "wsgidontwritebytecode", "acceptfilter",
    "gracefulshutdowntimeout", "scoreboardfile", "coredumpdirectory", "pythonautoreload",
    "pythondebug", "pythoninterpreter", "pythoninterpperdirectory", "pythonoptimize",
    "wsgiverbosedebugging", "wsgisocketrotation", "wsgidestroyinterpreter",
} | _QUIET_SSL

# Access control directives of a <Directory>/<Location> block (mod_access_compat, mod_authz_*).
_ACCESS = {"order", "allow", "deny", "require"}

# WSGIScriptAlias options after the path (mod_wsgi 4).
_SCRIPT_ALIAS_OPTIONS = ("process-group", "application-group", "callable-object",
                         "pass-authorization")

# LogFormat nicknames every Apache knows (CustomLog path combined).
_LOG_FORMAT_NICKNAMES = {
    "common": '%h %l %u %t "%r" %>s %b',
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"',
}


@dataclass
class _Block:
    kind: str                          # 'directory' or 'location'
    arg: str                           # the mapped filesystem path, or the URL
    directives: List[Directive]
    where: str


@dataclass
class _Scope:
    """The main server, or one <VirtualHost>."""
    settings: Dict[str, Any] = field(default_factory=dict)
    blocks: List[_Block] = field(default_factory=list)
    group_by_url: Dict[str, str] = field(default_factory=dict)
    where: str = ""
    # mod_ssl (mod_ssl.py): SSLEngine on; a redirect of everything to https; a <VirtualHost>'s
    # address, port and section; the first certificate directive; pending RewriteConds
    tls: bool = False
    https_redirect: bool = False
    address: str = ""
    port: Optional[str] = None
    section: Optional[Directive] = None
    cert_where: Optional[Directive] = None
    rewrite_conds: List[Directive] = field(default_factory=list)

    def names(self) -> List[str]:
        name = self.settings.get("server_name")
        return ([name.lower()] if name else []) + list(self.settings.get("server_alias", []))

    def only_names(self) -> bool:
        """Nothing but its names (and a redirect): a port-80 twin of an https site."""
        return not self.blocks and not self.group_by_url and \
            set(self.settings) <= {"server_name", "server_alias"}


class _Translator(ModSSL):
    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.warnings: List[str] = []
        self.main = _Scope()
        self.vhosts: List[_Scope] = []
        self.listens: List[Tuple[str, str, str, Directive]] = []  # host, port, protocol, where
        self.log_formats: Dict[str, str] = dict(_LOG_FORMAT_NICKNAMES)
        self.daemon_names: Dict[str, str] = {}
        self.global_group: Optional[Tuple[str, str]] = None   # (group, where)
        self.cgi_handlers: List[Tuple[Directive, List[str]]] = []  # AddHandler cgi-script
        self.exec_cgi = False                                  # Options ExecCGI somewhere

    # -- helpers
    def warn(self, directive: Directive, message: Optional[str] = None) -> None:
        text = f"{directive.where}: " + (message or f"{directive.name} is not supported, ignored")
        if text not in self.warnings:
            self.warnings.append(text)

    def error(self, directive: Directive, message: str) -> None:
        raise ApacheConfigError(f"{directive.where}: {message}")

    def need(self, directive: Directive, low: int, high: Optional[int] = None) -> List[str]:
        count = len(directive.args)
        if count < low or (high is not None and count > high):
            want = str(low) if high == low else (f"{low} to {high}" if high else f"at least {low}")
            self.error(directive, f"{directive.name} takes {want} argument(s), got {count}")
        return directive.args

    def path(self, text: str) -> str:
        return self.parser.map_path(text)

    @staticmethod
    def url(text: str) -> str:
        """A URL prefix as a mount point: '/media/' and '/media' are one prefix, '/' is ''."""
        return text.rstrip("/")

    # -- walking
    def walk(self, directives: List[Directive], scope: _Scope) -> None:
        for directive in directives:
            key = directive.key
            if directive.children is not None:
                self.section(directive, scope)
            elif key in _QUIET:
                continue
            else:
                handler = getattr(self, "d_" + key, None)
                if handler is None:
                    if key in _ACCESS or key in ("options", "addhandler", "sethandler",
                                                 "pythonhandler", "allowoverride", "satisfy"):
                        self.server_level_block_directive(directive, scope)
                    else:
                        self.warn(directive)
                else:
                    handler(directive, scope)

    def section(self, directive: Directive, scope: _Scope) -> None:
        key = directive.key
        children = directive.children or []
        if key == "ifmodule":
            arg = self.need(directive, 1, 1)[0]
            negate = arg.startswith("!")
            present = module_enabled(arg.lstrip("!"))
            if present != negate:
                self.walk(children, scope)
            elif not negate and children:
                self.warn(directive, f"<IfModule {arg}>: pywsgi has no such module; the "
                                     f"section is skipped")
            return
        if key == "ifdefine":
            arg = self.need(directive, 1, 1)[0]
            if arg.startswith("!"):  # nothing is defined here (no httpd -D)
                self.walk(children, scope)
            return
        if key == "ifversion":
            self.walk(children, scope)  # taken as true: the site was written for its Apache
            return
        if key in ("directory", "location"):
            if directive.args and directive.args[0] == "~":
                self.unmappable(directive, f"<{directive.name} ~ regex> is not supported")
                return
            arg = self.need(directive, 1, 1)[0]
            target = self.path(arg) if key == "directory" else self.url(arg)
            self.check_block(directive)
            scope.blocks.append(_Block(key, target, children, directive.where))
            return
        if key == "virtualhost":
            if scope is not self.main:
                self.error(directive, "<VirtualHost> inside <VirtualHost>")
            self.virtual_host(directive)
            return
        self.unmappable(directive, f"<{directive.name}> sections are not supported")

    def unmappable(self, directive: Directive, message: str) -> None:
        """A section pywsgi cannot map: skipped with a warning, unless it restricts access —
        then starting without it would serve what Apache refuses, so it is an error."""
        access = [d for d in flatten(directive.children or []) if d.key in _ACCESS]
        if access:
            self.error(directive, f"{message}, and it holds access rules ({access[0].where}: "
                                  f"{access[0].name} {' '.join(access[0].args)}) that pywsgi "
                                  f"cannot apply; refusing to start rather than serve what "
                                  f"Apache would refuse. Remove the section or express it with "
                                  f"<Directory>/<Location>")
        self.warn(directive, f"{message}; the section is ignored")

    def check_block(self, section: Directive) -> None:
        for directive in section.children or []:
            if directive.children is not None and directive.key not in ("ifmodule", "ifdefine",
                                                                        "ifversion"):
                self.unmappable(directive, f"<{directive.name}> inside <{section.name}> is "
                                           f"not supported")

    def server_level_block_directive(self, directive: Directive, scope: _Scope) -> None:
        # Apache allows these at server level too: they then apply to the whole URL space.
        scope.blocks.append(_Block("location", "", [directive], directive.where))

    # -- the main server and virtual hosts
    def d_listen(self, d: Directive, scope: _Scope) -> None:
        """Listen [host:]port [protocol]: the ports are chosen in finish_tls (mod_ssl.py), one
        for HTTP and one for HTTPS (a <VirtualHost> with SSLEngine on, or protocol https)."""
        args = self.need(d, 1, 2)
        protocol = args[1].lower() if len(args) == 2 else "http"
        if protocol not in ("http", "https"):
            self.warn(d, f"Listen {' '.join(args)}: protocol {args[1]} taken as http")
            protocol = "http"
        address = args[0]
        if address.startswith("["):
            host, _, port = address[1:].partition("]:")
        elif address.count(":") == 1:
            host, _, port = address.partition(":")
        elif ":" in address:
            self.error(d, f"Listen {address}: write an IPv6 address in brackets, [::]:80")
        else:
            host, port = "", address
        if not port.isdigit():
            self.error(d, f"Listen {address}: not a port number")
        self.listens.append((host, port, protocol, d))

    def d_servername(self, d: Directive, scope: _Scope) -> None:
        name = self.need(d, 1, 1)[0]
        name = re.sub(r"^[a-z]+://", "", name)
        scope.settings["server_name"] = name.rsplit(":", 1)[0] if name.count(":") == 1 else name

    def d_serveralias(self, d: Directive, scope: _Scope) -> None:
        if scope is self.main:
            self.warn(d, "ServerAlias outside <VirtualHost> means nothing, ignored")
            return
        scope.settings.setdefault("server_alias", []).extend(a.lower() for a in self.need(d, 1))

    def existing(self, d: Directive, path: str) -> bool:
        """Apache starts with a DocumentRoot or Alias whose path is missing (and answers 404
        there): such a directive is reported and left out, so a stock snippet such as Debian's
        'Alias /icons/ /usr/share/apache2/icons/' does not stop the start."""
        if os.path.exists(path):
            return True
        self.warn(d, f"{d.name} {' '.join(d.args)}: {path}: no such file or directory, ignored")
        return False

    def d_documentroot(self, d: Directive, scope: _Scope) -> None:
        path = self.path(self.need(d, 1, 1)[0])
        if self.existing(d, path):
            scope.settings["document_root"] = path

    def d_alias(self, d: Directive, scope: _Scope) -> None:
        url, target = self.need(d, 2, 2)
        if self.existing(d, self.path(target)):
            scope.settings.setdefault("url_alias", []).append(f"{self.url(url) or '/'}="
                                                               f"{self.path(target)}")

    def d_scriptalias(self, d: Directive, scope: _Scope) -> None:
        url, target = self.need(d, 2, 2)
        if self.existing(d, self.path(target)):
            scope.settings.setdefault("cgi_alias", []).append(f"{self.url(url) or '/'}="
                                                               f"{self.path(target)}")

    def d_wsgiscriptalias(self, d: Directive, scope: _Scope) -> None:
        args = self.need(d, 2)
        url, target = self.url(args[0]), self.path(args[1])
        for option in args[2:]:
            name, sep, value = option.partition("=")
            if not sep or name not in _SCRIPT_ALIAS_OPTIONS:
                self.warn(d, f"WSGIScriptAlias option {option!r} is not supported, ignored")
            elif name == "process-group":
                scope.group_by_url[url] = value
            elif name == "application-group":
                self.application_group(d, scope, value)
            elif name == "callable-object":
                scope.settings["callable_object"] = value
        if os.path.isdir(target) or args[1].endswith("/"):
            # mod_wsgi: every file of the directory is a WSGI script. pywsgi runs the files
            # with the handler extension there (handler scripts) and serves the rest as files.
            scope.settings.setdefault("url_alias", []).append(f"{url or '/'}={target}")
            self.main.settings["handler_scripts"] = "true"
            self.warn(d, f"WSGIScriptAlias {args[0]} {args[1]}: a directory of scripts; only "
                         f"files ending in the handler extension (.wsgi) run as applications "
                         f"(--handler-scripts), others are served as files")
            return
        scope.settings.setdefault("script_alias", []).append(f"{url or '/'}={target}")

    def d_wsgiscriptaliasmatch(self, d: Directive, scope: _Scope) -> None:
        self.warn(d, "WSGIScriptAliasMatch (regular-expression mounts) is not supported, "
                     "ignored: use WSGIScriptAlias")

    def d_aliasmatch(self, d: Directive, scope: _Scope) -> None:
        self.warn(d, "AliasMatch (regular-expression aliases) is not supported, ignored")

    def d_wsgidaemonprocess(self, d: Directive, scope: _Scope) -> None:
        args = self.need(d, 1)
        name = args[0]
        if ":" in name or "," in name or "/" in name:
            self.error(d, f"WSGIDaemonProcess {name}: a group name with ':', ',' or '/' cannot "
                          f"be carried over; rename the group (and its WSGIProcessGroup)")
        if name in self.daemon_names:
            self.error(d, f"WSGIDaemonProcess {name} is already defined at "
                          f"{self.daemon_names[name]}")
        self.daemon_names[name] = d.where
        kept = []
        for option in args[1:]:
            key, sep, value = option.partition("=")
            if not sep:
                self.error(d, f"WSGIDaemonProcess {name}: option {option!r} needs a value")
            if key not in DAEMON_OPTIONS:
                self.warn(d, f"WSGIDaemonProcess {name}: option {key} is not supported, ignored")
                continue
            if key in ("home", "working-directory", "python-home"):
                value = self.path(value)
            elif key == "python-path":
                value = ":".join(self.path(p) for p in value.split(":") if p)
            if "," in value:
                self.error(d, f"WSGIDaemonProcess {name}: {key}={value!r}: a comma cannot be "
                              f"carried over")
            kept.append(f"{key}={value}")
        self.main.settings.setdefault("daemon_process", []).append(f"{name}:" + ",".join(kept))

    def process_group(self, d: Directive) -> str:
        """WSGIProcessGroup's argument: a group name, or %{GLOBAL} for embedded mode."""
        group = self.need(d, 1, 1)[0]
        if group == "%{GLOBAL}":
            return ""
        if group.startswith("%{"):
            self.error(d, f"WSGIProcessGroup {group}: only a group name or %{{GLOBAL}} can be "
                          f"carried over")
        return group

    def d_wsgiprocessgroup(self, d: Directive, scope: _Scope) -> None:
        group = self.process_group(d)
        if scope is self.main:
            self.global_group = (group, d.where)
        else:
            scope.settings["process_group"] = group

    def d_wsgiapplicationgroup(self, d: Directive, scope: _Scope) -> None:
        self.application_group(d, scope, self.need(d, 1, 1)[0])

    def application_group(self, d: Directive, scope: _Scope, group: str) -> None:
        previous = self.main.settings.get("application_group")
        if previous is not None and previous != group:
            self.warn(d, f"WSGIApplicationGroup {group}: pywsgi has one application group "
                         f"setting for all mounts; {previous} is kept")
            return
        self.main.settings["application_group"] = group

    def d_wsgicallableobject(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["callable_object"] = self.need(d, 1, 1)[0]

    def d_directoryindex(self, d: Directive, scope: _Scope) -> None:
        names = self.need(d, 1)
        if names[0].lower() == "disabled":
            self.warn(d, "DirectoryIndex disabled is not supported, ignored")
            return
        self.main.settings["directory_index"] = names[0]
        if len(names) > 1:
            self.warn(d, f"DirectoryIndex: only the first name ({names[0]}) is used; "
                         f"{' '.join(names[1:])} ignored")

    def d_keepalivetimeout(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["keep_alive_timeout"] = self.need(d, 1, 1)[0].split()[0]

    def d_timeout(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["socket_timeout"] = self.need(d, 1, 1)[0]

    def d_limitrequestbody(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["limit_request_body"] = self.need(d, 1, 1)[0]

    def d_allowencodedslashes(self, d: Directive, scope: _Scope) -> None:
        # Apache: "AllowEncodedSlashes On|Off|NoDecode", server config and <VirtualHost>; the
        # value without case. A virtual host's own setting wins over the server's, which it
        # inherits otherwise (as current Apache 2.4 does; older releases gave a virtual host
        # Off unless it set its own).
        value = self.need(d, 1, 1)[0]
        mode = value.lower()
        if mode not in ("on", "off", "nodecode"):
            self.error(d, f"AllowEncodedSlashes {value}: must be On, Off or NoDecode")
        scope.settings["allow_encoded_slashes"] = mode

    def d_limitrequestline(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["limit_request_line"] = self.need(d, 1, 1)[0]

    def d_limitrequestfields(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["limit_request_fields"] = self.need(d, 1, 1)[0]

    def d_limitrequestfieldsize(self, d: Directive, scope: _Scope) -> None:
        self.main.settings["limit_request_field_size"] = self.need(d, 1, 1)[0]

    def d_loglevel(self, d: Directive, scope: _Scope) -> None:
        level = self.need(d, 1)[0]
        if ":" in level:
            self.warn(d, f"LogLevel {level}: per-module levels are not supported, ignored")
            return
        level = {"emerg": "crit", "alert": "crit", "notice": "info"}.get(level.lower(), level)
        if level.startswith("trace"):
            level = "debug"
        self.main.settings["log_level"] = level

    def d_errorlog(self, d: Directive, scope: _Scope) -> None:
        target = self.need(d, 1, 1)[0]
        if target.startswith("|") or target.startswith("syslog"):
            self.warn(d, f"ErrorLog {target}: piped and syslog logs are not supported; the "
                         f"error log goes to stderr")
            return
        if scope is not self.main:
            self.warn(d, "ErrorLog inside <VirtualHost>: pywsgi has one error log; ignored")
            return
        self.main.settings["error_log"] = self.path(target)

    def d_logformat(self, d: Directive, scope: _Scope) -> None:
        args = self.need(d, 1, 2)
        if len(args) == 2:
            self.log_formats[args[1]] = args[0]

    def d_customlog(self, d: Directive, scope: _Scope) -> None:
        args = self.need(d, 2)
        target, fmt = args[0], args[1]
        if len(args) > 2:
            self.warn(d, "CustomLog conditions (env=...) are not supported; every request "
                         "is logged")
        if target.startswith("|"):
            self.warn(d, f"CustomLog {target}: piped logs are not supported, ignored")
            return
        if scope is not self.main:
            self.warn(d, "CustomLog inside <VirtualHost>: pywsgi has one access log; ignored")
            return
        if "access_log" in self.main.settings:
            self.warn(d, "pywsgi writes one access log; this CustomLog is ignored")
            return
        self.main.settings["access_log"] = self.path(target)
        self.main.settings["access_log_format"] = self.log_formats.get(fmt, fmt)

    def d_wsgipythonpath(self, d: Directive, scope: _Scope) -> None:
        self.warn(d, "WSGIPythonPath is not supported, ignored: set PYTHONPATH, or use "
                     "python-path= of WSGIDaemonProcess")

    def d_pythonpath(self, d: Directive, scope: _Scope) -> None:
        self.python_path(d, scope)

    def d_pythonoption(self, d: Directive, scope: _Scope) -> None:
        args = self.need(d, 1, 2)
        value = args[1] if len(args) == 2 else ""
        self.main.settings.setdefault("python_option", []).append(f"{args[0]}={value}")

    def python_path(self, d: Directive, scope: _Scope) -> None:
        """PythonPath "sys.path + ['/dir', ...]": the literal directories are added."""
        expression = " ".join(self.need(d, 1))
        found: List[str] = []
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError:
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.append(node.value)
        if not found:
            self.warn(d, f"PythonPath {expression}: no directory found in it, ignored")
            return
        paths = self.main.settings.setdefault("python_path", [])
        paths.extend(self.path(p) for p in found if self.path(p) not in paths)

    def virtual_host(self, section: Directive) -> None:
        self.need(section, 1)
        vhost = _Scope(where=section.where, address=section.args[0],
                       port=vhost_port(section.args[0]), section=section)
        self.walk(section.children or [], vhost)
        if "server_name" not in vhost.settings:
            self.warn(section, "<VirtualHost> without ServerName: it is reached only as the "
                               "default (first) virtual host")
        self.vhosts.append(vhost)

    # -- <Directory> / <Location> blocks -> per-URL settings
    def mounts_of(self, scope: _Scope) -> List[Tuple[str, str, str]]:
        """(url, filesystem path, kind) of everything the scope serves from the filesystem."""
        result = []
        settings = scope.settings
        if settings.get("document_root"):
            result.append(("", settings["document_root"], "document_root"))
        for kind in ("url_alias", "cgi_alias", "script_alias"):
            for item in settings.get(kind, ()):
                url, _, path = item.partition("=")
                result.append(("" if url == "/" else url, path, kind))
        return result

    def urls_for_directory(self, path: str, mounts) -> List[str]:
        """The URL prefixes that serve the directory `path` (with its subtree)."""
        path = path.rstrip("/") or "/"
        urls = []
        for url, target, kind in mounts:
            target = target.rstrip("/") or "/"
            if target == path or target.startswith(path.rstrip("/") + "/"):
                urls.append(url)   # the whole mount lies in the directory
            elif path.startswith(target.rstrip("/") + "/") and kind != "script_alias" \
                    and os.path.isdir(path):
                # a subdirectory of what the mount serves (one that does not exist serves
                # nothing, so its block has nothing to apply to)
                rel = path[len(target.rstrip("/")):]
                urls.append(url + rel)
        return urls

    def serves_url(self, url: str, mounts, scope: _Scope) -> bool:
        """False when `url` lies in a directory mount where no file or directory exists (a
        <Location /server-status> with a handler pywsgi lacks): it serves only 404s, so the
        block has nothing to apply to."""
        enclosing = None
        prefixes = [(u, p, k) for u, p, k in mounts]
        for setting in ("python_handler",):
            for item in self.main.settings.get(setting, []) + scope.settings.get(setting, []):
                prefixes.append((item.partition("=")[0].rstrip("/"), "", "app"))
        for mount_url, path, kind in prefixes:
            if url == mount_url or url.startswith(mount_url + "/") or mount_url == "":
                if enclosing is None or len(mount_url) > len(enclosing[0]):
                    enclosing = (mount_url, path, kind)
        if enclosing is None:
            return True   # master reports a URL no mount serves
        mount_url, path, kind = enclosing
        if kind not in ("document_root", "url_alias", "cgi_alias") or not os.path.isdir(path):
            return True
        return os.path.exists(os.path.join(path, url[len(mount_url):].lstrip("/")))

    def check_access_target(self, block: _Block, url: str, mounts) -> None:
        """Access rules reach a URL below a directory mount through a sub-mount of that
        directory; for a single file there is none, and dropping the rules would serve what
        Apache refuses."""
        best = None
        if any(mount_url == url for mount_url, _, _ in mounts):
            return  # the rules go on that mount itself
        for mount_url, path, kind in mounts:
            if url.startswith(mount_url + "/") or (mount_url == "" and url):
                if best is None or len(mount_url) > len(best[0]):
                    best = (mount_url, path, kind)
        if best is None or best[2] not in ("document_root", "url_alias", "cgi_alias"):
            return
        target = os.path.join(best[1], url[len(best[0]):].lstrip("/"))
        if os.path.isfile(target):
            raise ApacheConfigError(f"{block.where}: access rules for the single file {target} "
                                    f"(URL {url}) are not supported; refusing to start rather "
                                    f"than serve it to everyone. Move it into a directory of "
                                    f"its own and write the rules for the directory")

    def resolve_blocks(self, scope: _Scope, inherited: List[_Block]) -> None:
        mounts = self.mounts_of(scope)
        if scope is not self.main:
            # the main server's mounts the virtual host inherits (its own win for a URL)
            own = {url for url, _, _ in mounts}
            mounts += [m for m in self.mounts_of(self.main) if m[0] not in own]
        # url -> (specificity, rules, where); Location after Directory, deeper after shallower,
        # later after earlier: Apache's merge order, the last one merged wins.
        access: Dict[str, Tuple[Tuple[int, int, int], List[str], str]] = {}
        order = 0
        for block in inherited + scope.blocks:
            order += 1
            if block.kind == "directory":
                urls = self.urls_for_directory(block.arg, mounts)
                rank = (0, block.arg.rstrip("/").count("/") if block.arg != "/" else 0, order)
            else:
                urls = [block.arg]
                rank = (1, block.arg.count("/"), order)
            rules = self.block_settings(block, scope, urls)
            if block.kind == "location" and not self.serves_url(block.arg, mounts, scope):
                rules = []
            if rules:
                for url in urls:
                    self.check_access_target(block, url, mounts)
                    if url not in access or access[url][0] <= rank:
                        access[url] = (rank, rules, block.where)
        for url, (_rank, rules, _where) in sorted(access.items()):
            # A shallower Directory block reaching a mount only because the mount lies below
            # it is overridden by a deeper one that reaches the same mount: done by rank above.
            scope.settings.setdefault("access", []).append(f"{url or '/'}=" + "; ".join(rules))

    def block_settings(self, block: _Block, scope: _Scope, urls: List[str]) -> List[str]:
        """Carry over one block's directives for `urls`; returns its access rule lines."""
        rules: List[str] = []
        handler = None
        python_handler = None
        for d in flatten_conditionals(block.directives):
            key = d.key
            if key in _ACCESS:
                line = " ".join([d.name] + d.args)
                try:
                    AccessRules.parse(line)
                except ValueError as exc:
                    self.error(d, f"{line}: {exc}; refusing to start rather than serve what "
                                  f"Apache would refuse")
                rules.append(line)
            elif key == "satisfy":
                if d.args and d.args[0].lower() == "any":
                    self.warn(d, "Satisfy Any: pywsgi has no authentication, so the address "
                                 "rules alone decide")
            elif key == "options":
                for option in d.args:
                    name = option.lstrip("+-").lower()
                    on = not option.startswith("-")
                    if name == "followsymlinks" and on:
                        self.main.settings["follow_symlinks"] = "true"
                    elif name == "execcgi" and on:
                        self.exec_cgi = True
                    elif name in ("none", "symlinksifownermatch", "followsymlinks", "all",
                                  "execcgi"):
                        # ExecCGI: pywsgi runs scripts where a handler says so (AddHandler /
                        # SetHandler / ScriptAlias); the option alone changes nothing
                        continue
                    elif name == "indexes" and on:
                        self.warn(d, "Options Indexes: directory listings are not served "
                                     "(a directory without an index file gives 404)")
                    elif on:
                        self.warn(d, f"Options {option} is not supported, ignored")
            elif key == "addhandler":
                args = self.need(d, 2)
                if args[0].lower() == "wsgi-script":
                    self.handler_scripts(args[1:])
                elif args[0].lower() == "cgi-script":
                    self.cgi_handlers.append((d, args[1:]))  # see finish()
                else:
                    self.warn(d, f"AddHandler {args[0]} is not supported, ignored")
            elif key == "sethandler":
                handler = self.need(d, 1, 1)[0].lower()
                if handler == "wsgi-script":
                    self.handler_scripts([])
                    self.warn(d, "SetHandler wsgi-script: files ending in the handler extension "
                                 "(.wsgi) run as applications, others are served as files")
                elif handler in ("none", "default-handler", "mod_python", "python-program"):
                    pass
                else:
                    self.warn(d, f"SetHandler {handler} is not supported, ignored")
            elif key == "pythonhandler":
                python_handler = d
            elif key == "pythonpath":
                self.python_path(d, scope)
            elif key == "pythonoption":
                self.d_pythonoption(d, scope)
            elif key == "wsgiprocessgroup":
                group = self.process_group(d)
                for url in urls:
                    scope.group_by_url[url] = group
            elif key == "wsgiapplicationgroup":
                self.application_group(d, scope, self.need(d, 1, 1)[0])
            elif key == "allowoverride" or key == "allowoverridelist":
                if any(a.lower() != "none" for a in d.args):
                    self.warn(d, "AllowOverride: .htaccess files are not read, ignored")
            elif key == "directoryindex":
                self.d_directoryindex(d, scope)
            elif key == "allowencodedslashes":
                # Apache refuses to start with it here ("not allowed here"): so does pywsgi
                self.error(d, f"AllowEncodedSlashes is not allowed in <{block.kind.title()}>; "
                              f"Apache takes it in the server config and <VirtualHost> only")
            elif key == "sslrequiressl" and not scope.tls:
                self.error(d, "SSLRequireSSL outside an SSLEngine on virtual host: pywsgi "
                              "cannot refuse plain HTTP for one URL; serve the whole site over "
                              "https with --https-only (Redirect / https://... on port 80)")
            elif key == "sslverifyclient" and d.args and d.args[0].lower() != "none":
                self.error(d, f"SSLVerifyClient {d.args[0]} in <{block.kind.title()}>: client "
                              f"certificates for part of a site are not supported; refusing to "
                              f"start rather than serve it without one. Set it for the server")
            elif key == "ssloptions":
                self.d_ssloptions(d, scope)
            elif key in _QUIET or key == "sslrequiressl":
                continue
            else:
                self.warn(d)
        if python_handler is not None:
            if handler not in ("mod_python", "python-program"):
                self.warn(python_handler, "PythonHandler without SetHandler mod_python, ignored")
            else:
                spec = python_handler.args[0] if python_handler.args else ""
                for url in urls:
                    scope.settings.setdefault("python_handler", []).append(f"{url or '/'}={spec}")
                    # The site was written for Apache's mod_python: 'from mod_python import
                    # apache' must work (a real mod_python cannot run outside Apache anyway).
                    self.main.settings["mod_python_shim"] = "true"
                if not urls:
                    self.warn(python_handler, f"PythonHandler {spec}: <Directory {block.arg}> "
                                              f"is not served at any URL, ignored")
        return rules

    def handler_scripts(self, extensions: List[str]) -> None:
        self.main.settings["handler_scripts"] = "true"
        if extensions:
            have = self.main.settings.setdefault("handler_extension", [])
            have.extend(e for e in extensions if e not in have)

    # -- the result
    def finish(self) -> Dict[str, Any]:
        main = self.main
        self.resolve_blocks(main, [])
        for vhost in self.vhosts:
            self.resolve_blocks(vhost, main.blocks)
        if self.cgi_handlers:
            # pywsgi's cgi_extension holds for every served directory; Apache runs the files
            # only where Options ExecCGI is on, and refuses them (403) elsewhere.
            if not self.exec_cgi:
                d = self.cgi_handlers[0][0]
                self.error(d, "AddHandler cgi-script, but Options ExecCGI is on nowhere, so "
                              "Apache refuses to run these files; pywsgi would serve their "
                              "source instead. Add Options ExecCGI or remove the AddHandler")
            have = main.settings.setdefault("cgi_extension", [])
            for _, extensions in self.cgi_handlers:
                have.extend(e for e in extensions if e not in have)
        raw = dict(main.settings)
        self.finish_tls(raw)   # the ports, and which virtual hosts stay (mod_ssl.py)
        if self.global_group is not None:
            raw["process_group"] = self.global_group[0]
        # WSGIProcessGroup inside <VirtualHost>, <Location>/<Directory>, or process-group= of
        # WSGIScriptAlias: when they all name one group and there is no server-wide one, that
        # group is the server's (pywsgi routes every application mount to one group).
        named = set(main.group_by_url.values())
        for vhost in self.vhosts:
            named.update(vhost.group_by_url.values())
            if "process_group" in vhost.settings:
                named.add(vhost.settings["process_group"])
        if not raw.get("process_group") and len(named) == 1:
            raw["process_group"] = named.pop()
        group = raw.get("process_group", "")

        def per_mount(groups: Dict[str, str]) -> List[str]:
            return [f"{url or '/'}={g}" for url, g in sorted(groups.items()) if g != group]
        raw["mount_process_group"] = per_mount(main.group_by_url)
        if self.vhosts:
            hosts = []
            for vhost in self.vhosts:
                settings = dict(vhost.settings)
                if settings.get("process_group") == group:
                    del settings["process_group"]
                settings["mount_process_group"] = per_mount(vhost.group_by_url)
                if not settings["mount_process_group"]:
                    del settings["mount_process_group"]
                hosts.append(settings)
            raw["virtual_host"] = hosts
        for name, value in list(raw.items()):
            if value == []:
                del raw[name]
        return raw


def translate(directives: List[Directive], parser: Optional[Parser] = None):
    """(raw settings, warnings) for parsed directives."""
    translator = _Translator(parser or Parser(None, os.getcwd()))
    translator.walk(directives, translator.main)
    raw = translator.finish()
    return raw, translator.warnings


def read(path: str, root: Optional[str] = None) -> Tuple[Dict[str, Any], None, List[str]]:
    """The settings an Apache configuration file gives: (raw settings, target, warnings)."""
    if root is not None:
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise ApacheConfigError(f"--apache-root {root}: no such directory")
    if not os.path.isfile(path):
        raise ApacheConfigError(f"--apache-config {path}: no such file")
    parser = Parser(root, None)
    directives = parser.parse_file(path)
    raw, warnings = translate(directives, parser)
    return raw, None, warnings
