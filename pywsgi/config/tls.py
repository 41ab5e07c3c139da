"""HTTPS: the settings' converters and defaults (docs/tls.md).

The work is done in C (csrc/tls.c); the master reads and checks the certificate files
(process/tls.py). This module only checks what the user typed, so a mistake is a clear startup
error naming the setting.
"""
from __future__ import annotations

from typing import Any, List, Optional

# The protocol versions pywsgi offers: TLS 1.2 and 1.3. TLS 1.0 and 1.1 are broken (RFC 8996
# deprecates them) and SSLv3 long dead: asking for them is an error, not a silent downgrade.
PROTOCOLS = ("TLSv1.2", "TLSv1.3")
REFUSED_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1")

# Mozilla's "intermediate" configuration (ssl-config.mozilla.org, guideline 5.7) for TLS 1.2;
# TLS 1.3's suites are OpenSSL's defaults, all of them strong.
MOZILLA_INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")

VERIFY_CLIENT = ("none", "optional", "require")


def as_ssl_protocols(value: Any) -> List[str]:
    """--ssl-protocols: 'TLSv1.2 TLSv1.3' (spaces or commas), 'TLSv1.3', or 'all' (both)."""
    if isinstance(value, (list, tuple)):
        words = [str(item) for item in value]
    elif isinstance(value, str):
        words = value.replace(",", " ").split()
    else:
        raise ValueError(f"expected protocol names such as 'TLSv1.2 TLSv1.3', got "
                         f"{type(value).__name__}")
    chosen: List[str] = []
    for word in words:
        if word.lower() == "all":
            chosen.extend(PROTOCOLS)
            continue
        match = [name for name in PROTOCOLS if name.lower() == word.lower()]
        if not match:
            if word in REFUSED_PROTOCOLS or word.lower() in (p.lower() for p in REFUSED_PROTOCOLS):
                raise ValueError(f"{word} is not offered: it is insecure (RFC 8996); use "
                                 f"TLSv1.2 and/or TLSv1.3")
            raise ValueError(f"unknown protocol {word!r}: use TLSv1.2, TLSv1.3 or all")
        chosen.extend(match)
    if not chosen:
        raise ValueError("name at least one protocol: TLSv1.2, TLSv1.3 or all")
    return [name for name in PROTOCOLS if name in chosen]


def as_ssl_verify_client(value: Any) -> str:
    """--ssl-verify-client: none, optional or require (mod_ssl's SSLVerifyClient values)."""
    text = str(value).strip().lower()
    if text not in VERIFY_CLIENT:
        raise ValueError(f"must be none, optional or require, got {value!r}")
    return text


def as_ssl_ciphers(value: Any) -> str:
    """--ssl-ciphers: an OpenSSL cipher list for TLS 1.2 (checked by OpenSSL at start)."""
    text = str(value).strip()
    if not text or any(ch.isspace() and ch != " " for ch in text) or not text.isascii():
        raise ValueError(f"expected an OpenSSL cipher list such as 'ECDHE+AESGCM', got "
                         f"{value!r}")
    return text


def as_hsts_policy(value: Any) -> Optional[str]:
    """--hsts-policy: the Strict-Transport-Security value, e.g. 'max-age=31536000;
    includeSubDomains' (RFC 6797 section 6.1)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if len(text) > 200 or not text.isascii() or any(ord(ch) < 32 for ch in text):
        raise ValueError("expected a header value such as 'max-age=31536000; "
                         "includeSubDomains' (printable ASCII, at most 200 characters)")
    if "max-age" not in text.lower():
        raise ValueError(f"a Strict-Transport-Security value needs max-age=SECONDS (RFC 6797 "
                         f"6.1.1), got {text!r}")
    return text
