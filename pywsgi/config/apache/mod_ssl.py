"""mod_ssl in an Apache configuration (docs/tls.md, docs/migrating-from-mod_wsgi.md): the SSL*
directives, `<VirtualHost *:443>` with `SSLEngine on`, the port-80 virtual host that only
redirects to https, and the HSTS header, carried over to pywsgi's HTTPS settings.

``ModSSL`` is a part of the translator (translate.py's ``_Translator`` derives from it): its
``d_*`` methods take the directives, ``finish_tls`` decides the ports and the virtual hosts once
the whole configuration has been read.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from pywsgi.config.apache.syntax import Directive
from pywsgi.config.tls import REFUSED_PROTOCOLS

__all__ = ["ModSSL", "vhost_port"]

# Directives that change nothing here: pywsgi's defaults already do what they ask, or the
# setting has no counterpart worth a warning.
QUIET = {"sslhonorcipherorder", "sslsessioncache", "sslsessioncachetimeout", "sslcompression",
         "sslsessiontickets", "sslrandomseed", "sslstrictsnivhostcheck", "sslinsecurerenegotiation",
         "rewriteengine", "sslopensslconfcmd"}

# SSLProtocol's names (mod_ssl), as sets of versions.
_ALL = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_CERTIFICATE_KEYS = ("ssl_certificate_file", "ssl_certificate_key_file",
                     "ssl_certificate_chain_file")


def vhost_port(address: str) -> Optional[str]:
    """The port of a <VirtualHost> address: '*:443', '_default_:443', '[::1]:443', '10.0.0.1:443'
    -> '443'; None without one."""
    if address.startswith("["):
        _, _, rest = address.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        _, sep, port = address.rpartition(":")
        port = port if sep else ""
    return port if port.isdigit() else None


class ModSSL:
    main: Any  # translate._Scope (not imported: translate imports this module)
    vhosts: List[Any]
    listens: List[Any]

    # provided by _Translator
    def warn(self, directive: Directive, message: Optional[str] = None) -> None: ...

    def error(self, directive: Directive, message: str) -> None: ...

    def need(self, directive: Directive, low: int, high: Optional[int] = None) -> List[str]:
        raise NotImplementedError

    def path(self, text: str) -> str:
        raise NotImplementedError

    def server_wide(self, d: Directive, name: str, value: Any) -> None:
        """A setting pywsgi has once for the server, given in the main server or a virtual
        host: the first value wins, a different one later is reported."""
        have = self.main.settings.get(name)
        if have is not None and have != value:
            self.warn(d, f"{d.name} {' '.join(d.args)}: pywsgi has one {name} for all virtual "
                         f"hosts; the earlier {have} is kept")
            return
        self.main.settings[name] = value

    # -- the directives
    def d_sslengine(self, d: Directive, scope: Any) -> None:
        value = self.need(d, 1, 1)[0].lower()
        if value not in ("on", "off", "optional"):
            self.error(d, f"SSLEngine {value}: must be on or off")
        if value == "optional":
            self.warn(d, "SSLEngine optional (TLS upgrade, RFC 2817) is not supported; off")
        scope.tls = value == "on"

    def certificate_file(self, d: Directive, scope: Any, name: str) -> None:
        scope.settings[name] = self.path(self.need(d, 1, 1)[0])
        scope.cert_where = scope.cert_where or d

    def d_sslcertificatefile(self, d: Directive, scope: Any) -> None:
        if "ssl_certificate_file" in scope.settings:
            self.warn(d, "a second SSLCertificateFile (another key type): only the first "
                         "certificate is served")
            return
        self.certificate_file(d, scope, "ssl_certificate_file")

    def d_sslcertificatekeyfile(self, d: Directive, scope: Any) -> None:
        if "ssl_certificate_key_file" in scope.settings:
            return  # (the second certificate's, reported above)
        self.certificate_file(d, scope, "ssl_certificate_key_file")

    def d_sslcertificatechainfile(self, d: Directive, scope: Any) -> None:
        self.certificate_file(d, scope, "ssl_certificate_chain_file")

    def d_sslcacertificatefile(self, d: Directive, scope: Any) -> None:
        self.server_wide(d, "ssl_ca_certificate_file", self.path(self.need(d, 1, 1)[0]))

    def d_sslverifyclient(self, d: Directive, scope: Any) -> None:
        value = self.need(d, 1, 1)[0].lower()
        if value == "optional_no_ca":
            self.warn(d, "SSLVerifyClient optional_no_ca: pywsgi checks a client certificate "
                         "it is given (optional): one that does not chain to "
                         "SSLCACertificateFile is refused")
            value = "optional"
        if value not in ("none", "optional", "require"):
            self.error(d, f"SSLVerifyClient {value}: must be none, optional, require or "
                          f"optional_no_ca")
        self.server_wide(d, "ssl_verify_client", value)

    def d_sslverifydepth(self, d: Directive, scope: Any) -> None:
        pass  # OpenSSL's own depth limit (100) applies; mod_ssl's default of 1 would refuse
              # intermediate CAs that the site's clients may well use

    def d_sslprotocol(self, d: Directive, scope: Any) -> None:
        """mod_ssl's syntax: a name sets, +name adds, -name removes; 'all' is every version."""
        chosen: set = set()
        for word in self.need(d, 1):
            sign = word[0] if word[0] in "+-" else ""
            name = word[len(sign):]
            known = {v.lower(): v for v in _ALL}
            if name.lower() == "all":
                names = set(_ALL)
            elif name.lower() in known:
                names = {known[name.lower()]}
            else:
                self.error(d, f"SSLProtocol: unknown protocol {word!r}")
                return
            if sign == "+":
                chosen |= names
            elif sign == "-":
                chosen -= names
            else:
                chosen = names if not chosen else chosen | names
        offered = [v for v in ("TLSv1.2", "TLSv1.3") if v in chosen]
        dropped = [v for v in _ALL if v in chosen and v in REFUSED_PROTOCOLS]
        if not offered:
            self.error(d, f"SSLProtocol {' '.join(d.args)}: only {', '.join(dropped)}, which "
                          f"pywsgi never offers (insecure, RFC 8996); use TLSv1.2 and/or TLSv1.3")
        if dropped:
            self.warn(d, f"SSLProtocol: {', '.join(dropped)} not offered (insecure, RFC 8996); "
                         f"{' and '.join(offered)} only")
        self.server_wide(d, "ssl_protocols", " ".join(offered))

    def d_sslciphersuite(self, d: Directive, scope: Any) -> None:
        args = self.need(d, 1, 2)
        if len(args) == 2:
            if args[0].upper() != "SSL":
                self.warn(d, f"SSLCipherSuite {args[0]} ...: TLS 1.3 suites are OpenSSL's "
                             f"defaults (all strong), ignored")
                return
            args = args[1:]
        self.server_wide(d, "ssl_ciphers", args[0])

    def d_ssloptions(self, d: Directive, scope: Any) -> None:
        for option in self.need(d, 1):
            name = option.lstrip("+-").lower()
            if name == "stdenvvars":
                if not option.startswith("-"):
                    self.main.settings["ssl_environ"] = "true"
            elif name in ("strictrequire", "optrenegotiate"):
                continue
            elif not option.startswith("-"):
                self.warn(d, f"SSLOptions {option} is not supported, ignored (+StdEnvVars is: "
                             f"--ssl-environ)")

    def d_sslpassphrasedialog(self, d: Directive, scope: Any) -> None:
        self.warn(d, "SSLPassPhraseDialog: pywsgi never runs a program or prompts for a key's "
                     "passphrase; give it with --ssl-certificate-key-password-file")

    def d_sslusestapling(self, d: Directive, scope: Any) -> None:
        if self.need(d, 1, 1)[0].lower() == "on":
            self.warn(d, "SSLUseStapling on: OCSP stapling is not supported, ignored")

    def d_sslstaplingcache(self, d: Directive, scope: Any) -> None:
        pass  # (reported with SSLUseStapling on)

    def d_header(self, d: Directive, scope: Any) -> None:
        """Header [always] set Strict-Transport-Security "max-age=..." -> --hsts-policy."""
        args = [a for a in self.need(d, 1) if a.lower() not in ("always", "onsuccess")]
        if len(args) >= 3 and args[0].lower() == "set" and \
                args[1].lower() == "strict-transport-security":
            self.server_wide(d, "hsts_policy", args[2])
            return
        self.warn(d)

    def d_redirect(self, d: Directive, scope: Any) -> None:
        """Redirect [permanent|301] / https://... : everything to https (--https-only)."""
        args = self.need(d, 1, 3)
        if args[0].lower() in ("permanent", "temp", "seeother", "301", "302", "303", "307",
                               "308"):
            args = args[1:]
        if len(args) == 2 and args[0] == "/" and args[1].lower().startswith("https://"):
            scope.https_redirect = True
            return
        self.warn(d, "Redirect is not supported, ignored (only 'Redirect / https://...', "
                     "which becomes --https-only)")

    def d_rewritecond(self, d: Directive, scope: Any) -> None:
        scope.rewrite_conds.append(d)

    def d_rewriterule(self, d: Directive, scope: Any) -> None:
        """certbot's redirect: RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [R=...]."""
        args = self.need(d, 2, 3)
        flags = args[2].upper() if len(args) == 3 else ""
        conds, scope.rewrite_conds = scope.rewrite_conds, []
        if args[1].lower().startswith("https://") and re.search(r"\bR\b|\bR=", flags) and \
                args[0] in ("^", "^/?(.*)$", "^/(.*)$", "^(.*)$", "(.*)", ".*", "^/?(.*)"):
            scope.https_redirect = True
            return
        for cond in conds:
            self.warn(cond, "RewriteCond is not supported, ignored")
        self.warn(d, "RewriteRule is not supported, ignored (only a redirect of everything to "
                     "https://, which becomes --https-only)")

    # -- the result
    def finish_tls(self, raw: Dict[str, Any]) -> None:
        """Decide the HTTP and HTTPS ports (Listen, <VirtualHost *:443> with SSLEngine on), which
        virtual hosts stay (a port-80 one that only redirects to https becomes --https-only; a
        port-80 one for the same names as a TLS one is the TLS one's), and drop certificates of
        hosts that are not TLS."""
        tls_ports = [vh.port for vh in self.vhosts if vh.tls and vh.port]
        tls_ports += [port for _, port, proto, _ in self.listens
                      if proto == "https" and port not in tls_ports]
        if self.main.tls:
            tls_ports += [port for _, port, _, _ in self.listens[:1] if port not in tls_ports]
        tls_ports = list(dict.fromkeys(tls_ports))
        plain = [(host, port, d) for host, port, proto, d in self.listens
                 if port not in tls_ports]
        https = next((port for port in tls_ports), None)
        for extra in tls_ports[1:]:
            where = next((d for _, port, _, d in self.listens if port == extra), None)
            if where is not None:
                self.warn(where, f"Listen {extra}: pywsgi serves HTTPS on one port ({https}); "
                                 f"this one is not used")
        if plain:
            host, port, _ = plain[0]
            raw["host"] = host or "0.0.0.0"
            raw["port"] = port
            for _, other, d in plain[1:]:
                self.warn(d, f"Listen {other}: pywsgi listens for HTTP on one port "
                             f"({port}); this one is not used")
        elif https is not None and self.listens:
            host = self.listens[0][0]
            raw["host"] = host or "0.0.0.0"
        if https is not None:
            raw["https_port"] = https
            if self.main.https_redirect:
                raw["https_only"] = "true"
        tls_names = set()
        for vhost in self.vhosts:
            if vhost.tls or (self.main.tls and vhost.port in (None, https)):
                tls_names.update(vhost.names())
        kept = []
        for vhost in self.vhosts:
            is_tls = vhost.tls or (self.main.tls and vhost.port in (None, https))
            if not is_tls:
                for key in _CERTIFICATE_KEYS:
                    if vhost.settings.pop(key, None) is not None and vhost.cert_where:
                        self.warn(vhost.cert_where, f"{vhost.cert_where.name} in a virtual host "
                                                    f"without SSLEngine on, ignored")
                        vhost.cert_where = None
                if vhost.https_redirect and https is not None and vhost.only_names():
                    raw["https_only"] = "true"   # the usual port-80 twin: it only redirects
                    continue
                if https is not None and vhost.names() and set(vhost.names()) <= tls_names:
                    assert vhost.section is not None
                    self.warn(vhost.section, f"<VirtualHost {vhost.address}> for "
                                             f"{', '.join(vhost.names())}: pywsgi routes by name "
                                             f"on both ports, so the TLS virtual host of that "
                                             f"name serves HTTP too; this one is not used")
                    continue
            kept.append(vhost)
        self.vhosts[:] = kept
