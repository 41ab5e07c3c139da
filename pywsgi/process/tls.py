"""HTTPS in the master (docs/tls.md): the certificate files are read here - as root, before any
--user takes effect, so a key may be readable by root only - checked by building a TLS context
with the core (csrc/tls.c), and handed to the server children as a `TLSMaterial` (PEM texts and
the server's TLS options): the Master keeps it and gives it to each new server process
(worker.child_main), whose core config carries it (process/core_config.py); each builds its own
contexts from it. A daemon process gets none. On a graceful restart (SIGHUP) the files are read
again, so new processes serve a renewed certificate while the old ones finish theirs:
certificate rotation without a restart. A bad new certificate is logged and the previous one
kept.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from pywsgi.config.typed import Settings
from pywsgi.errors import StartupError
from pywsgi.observe import errorlog

__all__ = ["TLSCertificate", "TLSOptions", "TLSMaterial", "tls_material", "reload_tls_material",
           "HOW_TO_GET_TLS"]

HOW_TO_GET_TLS = ("install the system's OpenSSL library (Debian/Ubuntu: apt-get install "
                  "libssl3; Fedora/RHEL: dnf install openssl-libs; Alpine: apk add libssl3), "
                  "the one Python's ssl module uses")

# Ticket keys (RFC 5077 session resumption): 16 bytes of name, 32 of HMAC key, 32 of AES key,
# as OpenSSL takes them. Made by the master, so every process resumes every other's sessions.
TICKET_KEYS_SIZE = 80


@dataclass(frozen=True)
class TLSCertificate:
    """One certificate as read from its files: the server's, or a virtual host's (SNI)."""
    label: str                      # how errors and the log name it
    cert: bytes                     # PEM, maybe followed by intermediates (a fullchain.pem)
    key: bytes                      # PEM
    chain: Optional[bytes]          # --ssl-certificate-chain-file's PEM
    password: Optional[str]         # the encrypted key's passphrase


@dataclass(frozen=True)
class TLSOptions:
    """The server's TLS options, the same for every certificate."""
    ca: Optional[bytes]             # PEM of the CAs client certificates must chain to
    verify_client: str              # none, optional or require
    protocols: Tuple[str, ...]      # of TLSv1.2, TLSv1.3
    ciphers: str                    # OpenSSL's cipher list for TLS 1.2
    ticket_keys: bytes              # TICKET_KEYS_SIZE bytes, the same in every process
    ktls: bool                      # kernel TLS when OpenSSL and the kernel have it


@dataclass(frozen=True)
class TLSMaterial:
    """What a server process builds its TLS contexts from (the core's tls_site)."""
    default: TLSCertificate         # for a client naming no host, or one with no certificate
    hosts: Tuple[Tuple[Tuple[str, ...], TLSCertificate], ...]  # (names, certificate) per host
    common: TLSOptions


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


def _certificate(cert_path: str, key_path: str, chain_path: Optional[str],
                 password: Optional[str], where: str) -> TLSCertificate:
    """One certificate's PEM texts from its files (the server's, or a virtual host's)."""
    return TLSCertificate(
        label=f"{where}--ssl-certificate-file {cert_path}",
        cert=_read(cert_path, f"{where}--ssl-certificate-file"),
        key=_read(key_path, f"{where}--ssl-certificate-key-file"),
        chain=_read(chain_path, f"{where}--ssl-certificate-chain-file") if chain_path else None,
        password=password,
    )


def _host_names(host: Mapping[str, Any]) -> Tuple[str, ...]:
    return tuple(([host["server_name"]] if host.get("server_name") else [])
                 + list(host.get("server_alias") or ()))


def _load_core(settings: Settings):
    import pywsgi._core as _core
    try:
        library = _core.tls_load(settings.ssl_library)
    except RuntimeError as exc:
        raise StartupError(f"--https-port: TLS is not available here: cannot load OpenSSL's "
                           f"libssl ({exc}); {HOW_TO_GET_TLS}") from None
    return _core, library


def _build(settings: Settings) -> Tuple[TLSMaterial, str]:
    """The TLS material of the settings, checked; and a line describing it for the log."""
    _core, library = _load_core(settings)
    password = None
    if settings.ssl_certificate_key_password_file:
        text = _read(settings.ssl_certificate_key_password_file,
                     "--ssl-certificate-key-password-file")
        password = text.decode("utf-8", "replace").splitlines()[0] if text.strip() else ""
    common = TLSOptions(
        ca=(_read(settings.ssl_ca_certificate_file, "--ssl-ca-certificate-file")
            if settings.ssl_ca_certificate_file else None),
        verify_client=settings.ssl_verify_client or "none",
        protocols=tuple(settings.ssl_protocols),
        ciphers=settings.ssl_ciphers,
        ticket_keys=os.urandom(TICKET_KEYS_SIZE),
        ktls=True,
    )
    hosts = []
    for host in settings.virtual_host:
        if host.get("ssl_certificate_file"):
            names = _host_names(host)
            where = f"virtual host {names[0] if names else '(default)'}: "
            hosts.append((names, _certificate(
                host["ssl_certificate_file"], host["ssl_certificate_key_file"],
                host.get("ssl_certificate_chain_file"), password, where)))
    if settings.ssl_certificate_file:
        # build() made sure of the key (config/settings.py _check_https)
        default = _certificate(settings.ssl_certificate_file,
                               settings.ssl_certificate_key_file or "",
                               settings.ssl_certificate_chain_file, password, "")
    else:
        default = hosts[0][1]  # Apache: the first virtual host on the port is the default
    material = TLSMaterial(default=default,
                           hosts=tuple((names, cert) for names, cert in hosts if names),
                           common=common)
    try:
        site = _core.tls_site(material)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return material, f"{site.description} ({library})"


def tls_material(settings: Settings) -> Optional[TLSMaterial]:
    """The TLS material when HTTPS is on, else None (StartupError, one line, when a file is
    missing, unreadable, expired, encrypted without its passphrase or not matching its key)."""
    if settings.https_port is None:
        return None
    material, description = _build(settings)
    errorlog.info(f"HTTPS certificate: {description}")
    return material


def reload_tls_material(settings: Settings,
                        previous: Optional[TLSMaterial]) -> Optional[TLSMaterial]:
    """SIGHUP: the certificate files read again for the new processes; when they are bad now,
    the previous material is kept (and the reason logged)."""
    if settings.https_port is None:
        return previous
    try:
        material, description = _build(settings)
    except StartupError as exc:
        errorlog.error(f"HTTPS certificate not reloaded, the previous one is kept: {exc}")
        return previous
    errorlog.info(f"HTTPS certificate reloaded: {description}")
    return material
