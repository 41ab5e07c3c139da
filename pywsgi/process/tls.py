"""HTTPS in the master (docs/tls.md): the certificate files are read here - as root, before any
--user takes effect, so a key may be readable by root only - checked by building a TLS context
with the core (csrc/tls.c), and handed to the children as PEM texts in their settings
('tls_material'); each child builds its own contexts from them. On a graceful restart (SIGHUP)
the files are read again, so new processes serve a renewed certificate while the old ones
finish theirs: certificate rotation without a restart. A bad new certificate is logged and the
previous one kept.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from pywsgi.errors import StartupError
from pywsgi.observe import errorlog

__all__ = ["tls_material", "reload_tls_material", "HOW_TO_GET_TLS"]

HOW_TO_GET_TLS = ("install the system's OpenSSL library (Debian/Ubuntu: apt-get install "
                  "libssl3; Fedora/RHEL: dnf install openssl-libs; Alpine: apk add libssl3), "
                  "the one Python's ssl module uses")

# Ticket keys (RFC 5077 session resumption): 16 bytes of name, 32 of HMAC key, 32 of AES key,
# as OpenSSL takes them. Made by the master, so every process resumes every other's sessions.
TICKET_KEYS_SIZE = 80


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        raise StartupError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise StartupError(f"{what} {path}: is a directory, not a PEM file") from None
    except OSError as exc:
        raise StartupError(f"{what} {path}: cannot read it: {exc.strerror or exc}") from None
    if not data.strip():
        raise StartupError(f"{what} {path}: the file is empty")
    return data


def _certificate(values: Dict[str, Any], password: Optional[str], where: str) -> Dict[str, Any]:
    """One certificate's PEM texts from its settings (the server's, or a virtual host's)."""
    cert_path = values["ssl_certificate_file"]
    chain_path = values.get("ssl_certificate_chain_file")
    return {
        "label": f"{where}--ssl-certificate-file {cert_path}",
        "cert": _read(cert_path, f"{where}--ssl-certificate-file"),
        "key": _read(values["ssl_certificate_key_file"], f"{where}--ssl-certificate-key-file"),
        "chain": _read(chain_path, f"{where}--ssl-certificate-chain-file") if chain_path else None,
        "password": password,
    }


def _host_names(host: Dict[str, Any]) -> List[str]:
    return ([host["server_name"]] if host.get("server_name") else []) + \
        list(host.get("server_alias") or ())


def _load_core(settings: Dict[str, Any]):
    import pywsgi._core as _core
    try:
        library = _core.tls_load(settings.get("ssl_library"))
    except RuntimeError as exc:
        raise StartupError(f"--https-port: TLS is not available here: cannot load OpenSSL's "
                           f"libssl ({exc}); {HOW_TO_GET_TLS}") from None
    return _core, library


def _build(settings: Dict[str, Any]) -> Tuple[Dict[str, Any], str]:
    """The TLS material of the settings, checked; and a line describing it for the log."""
    _core, library = _load_core(settings)
    password = None
    if settings.get("ssl_certificate_key_password_file"):
        text = _read(settings["ssl_certificate_key_password_file"],
                     "--ssl-certificate-key-password-file")
        password = text.decode("utf-8", "replace").splitlines()[0] if text.strip() else ""
    common = {
        "ca": (_read(settings["ssl_ca_certificate_file"], "--ssl-ca-certificate-file")
               if settings.get("ssl_ca_certificate_file") else None),
        "verify_client": settings.get("ssl_verify_client") or "none",
        "protocols": tuple(settings["ssl_protocols"]),
        "ciphers": settings["ssl_ciphers"],
        "ticket_keys": os.urandom(TICKET_KEYS_SIZE),
        "ktls": True,
    }
    hosts = []
    for host in settings.get("virtual_host") or ():
        if host.get("ssl_certificate_file"):
            names = _host_names(host)
            where = f"virtual host {names[0] if names else '(default)'}: "
            hosts.append((names, _certificate(host, password, where)))
    if settings.get("ssl_certificate_file"):
        default = _certificate(settings, password, "")
    else:
        default = hosts[0][1]  # Apache: the first virtual host on the port is the default
    material = {"default": default, "hosts": [(names, cert) for names, cert in hosts if names],
                "common": common}
    try:
        site = _core.tls_site(material)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return material, f"{site.description} ({library})"


def tls_material(settings: Dict[str, Any]) -> Dict[str, Any]:
    """settings with 'tls_material' when HTTPS is on (StartupError, one line, when a file is
    missing, unreadable, expired, encrypted without its passphrase or not matching its key)."""
    if settings.get("https_port") is None:
        return settings
    material, description = _build(settings)
    errorlog.info(f"HTTPS certificate: {description}")
    return dict(settings, tls_material=material)


def reload_tls_material(settings: Dict[str, Any]) -> Dict[str, Any]:
    """SIGHUP: the certificate files read again for the new processes; when they are bad now,
    the previous ones are kept (and the reason logged)."""
    if settings.get("https_port") is None:
        return settings
    try:
        material, description = _build(settings)
    except StartupError as exc:
        errorlog.error(f"HTTPS certificate not reloaded, the previous one is kept: {exc}")
        return settings
    errorlog.info(f"HTTPS certificate reloaded: {description}")
    return dict(settings, tls_material=material)
