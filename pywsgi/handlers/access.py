"""Access rules by client address: the ``<Directory>`` block's Order/Allow/Deny/Require lines.

    rules = AccessRules.parse('''
        Order deny,allow
        Deny from all
        Allow from 127.0.0.1 10.0.0.0/8
    ''')
    rules.allows('10.1.2.3')   # True

Both generations of Apache's host-based access control are understood:

* Apache 2.2 (mod_authz_host, mod_access_compat in 2.4): ``Order allow,deny`` / ``Order
  deny,allow`` / ``Order mutual-failure``, ``Allow from ...``, ``Deny from ...``. The arguments
  are ``all``, a full IP address, a partial IPv4 address (``10.1`` = ``10.1.0.0/16``), a network
  in CIDR form (``10.1.0.0/16``, ``2001:db8::/32``) or with a netmask (``10.1.0.0/255.255.0.0``).

  - ``Order allow,deny``: denied unless an Allow matches; then a matching Deny denies again.
  - ``Order deny,allow`` (Apache's default Order): allowed unless a Deny matches; then a
    matching Allow allows again.
  - ``Order mutual-failure``: allowed only when an Allow matches and no Deny does.

* Apache 2.4 (mod_authz_core / mod_authz_host): ``Require all granted``, ``Require all denied``,
  ``Require ip ADDR...``, ``Require local`` (loopback addresses), and ``Require not ip ...``.
  Several Require lines behave as Apache's implicit ``<RequireAny>``: one granting line allows
  the client — except ``Require not ...`` lines, which deny whatever matches them (as inside a
  ``<RequireAll>``, the only place Apache accepts them).

When a rule set has both kinds, the client must pass both (Apache 2.4 with mod_access_compat and
the default ``Satisfy All``). An empty rule set allows everyone. Host names (``Allow from
example.com``, ``Require host``) need DNS lookups per request and are refused when parsing, as are
authentication requirements (``Require valid-user``), which pywsgi does not implement.

The parser is shared with the Apache-config import; ``--access MOUNT=RULES`` on the command line
takes the same directives separated by ``;`` or newlines.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ["AccessRules", "parse_network", "split_directives"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# Everything, as one list of networks: 'all' in Allow/Deny and 'Require all granted'.
_ALL: Tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
# 'Require local': the loopback networks (Apache also counts the server's own address).
_LOCAL: Tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

_ORDERS = {"allow,deny": "allow,deny", "deny,allow": "deny,allow",
           "mutual-failure": "mutual-failure"}


def parse_network(text: str) -> Network:
    """One Allow/Deny/Require ip argument as a network.

    'ADDR', 'ADDR/BITS', 'ADDR/NETMASK', or a partial IPv4 address: '10', '10.1', '10.1.2' and
    '10.1.' (Apache: the first 1 to 3 bytes of an address, for a /8, /16 or /24 network).
    """
    value = text.strip()
    if not value:
        raise ValueError("empty address")
    try:
        if "/" in value:
            return ipaddress.ip_network(value, strict=False)
        return ipaddress.ip_network(value)  # a full address: a /32 or /128 network
    except ValueError:
        pass
    partial = value.rstrip(".")
    parts = partial.split(".")
    if 1 <= len(parts) <= 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        octets = [int(p) for p in parts] + [0] * (4 - len(parts))
        return ipaddress.ip_network("%d.%d.%d.%d/%d" % (*octets, 8 * len(parts)))
    raise ValueError(f"not an IP address, partial IP address or network: {text!r} "
                     f"(host names are not supported: they need a DNS lookup per request)")


def _client_address(remote_addr: str):
    """The client's address; an IPv4-mapped IPv6 address counts as its IPv4 address."""
    text = remote_addr.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # a zone index (fe80::1%eth0) is not part of the address
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _matches(address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def split_directives(text: str) -> List[str]:
    """Directive lines from a text: separated by newlines or ';'; '#' comments dropped."""
    lines = []
    for raw_line in text.replace(";", "\n").splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


class AccessRules:
    """Host-based access rules; ``allows(remote_addr)`` answers for one client address."""

    def __init__(self) -> None:
        self.order: Optional[str] = None          # None: no Order line (Apache's default applies)
        self.allow: List[Network] = []
        self.deny: List[Network] = []
        self.require_any: List[Network] = []      # granting Require lines (any one suffices)
        self.require_not: List[Network] = []      # 'Require not ip': a match denies
        self.has_compat = False                   # an Order / Allow / Deny line was given
        self.has_require = False                  # a Require line was given
        self.directives: List[str] = []           # the lines as given, for messages and repr

    # -- building
    @classmethod
    def parse(cls, text_or_lines: Union[str, Iterable[str]]) -> AccessRules:
        """Rules from directive lines (a text, or an iterable of lines); ValueError naming the
        bad line otherwise."""
        lines = (split_directives(text_or_lines) if isinstance(text_or_lines, str)
                 else [line for item in text_or_lines for line in split_directives(item)])
        rules = cls()
        for line in lines:
            rules.add_directive(line)
        return rules

    def add_directive(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        name = words[0].lower()
        args = words[1:]
        try:
            if name == "order":
                self._order(args)
            elif name in ("allow", "deny"):
                self._allow_deny(name, args)
            elif name == "require":
                self._require(args)
            elif name == "satisfy":
                # Satisfy Any/All combines host rules with authentication, which pywsgi has not.
                if len(args) != 1 or args[0].lower() not in ("any", "all"):
                    raise ValueError("expected 'Satisfy Any' or 'Satisfy All'")
            else:
                raise ValueError("unknown directive (expected Order, Allow, Deny, Require)")
        except ValueError as exc:
            raise ValueError(f"{line!r}: {exc}") from None
        self.directives.append(" ".join(words))

    def _order(self, args: List[str]) -> None:
        # Apache accepts 'Order allow,deny' and tolerates spaces around the comma.
        order = "".join(args).lower()
        if order not in _ORDERS:
            raise ValueError("expected 'Order allow,deny', 'Order deny,allow' or "
                             "'Order mutual-failure'")
        self.order = _ORDERS[order]
        self.has_compat = True

    def _allow_deny(self, name: str, args: List[str]) -> None:
        if not args or args[0].lower() != "from" or len(args) < 2:
            raise ValueError(f"expected '{name.capitalize()} from all|IP|NETWORK ...'")
        target = self.allow if name == "allow" else self.deny
        for arg in args[1:]:
            if arg.lower() == "all":
                target.extend(_ALL)
            elif arg.lower().startswith("env="):
                raise ValueError("'env=' conditions are not supported")
            else:
                target.append(parse_network(arg))
        self.has_compat = True

    def _require(self, args: List[str]) -> None:
        negate = bool(args) and args[0].lower() == "not"
        if negate:
            args = args[1:]
        if not args:
            raise ValueError("expected 'Require all granted|denied', 'Require ip ...' or "
                             "'Require local'")
        kind = args[0].lower()
        values = args[1:]
        if kind == "all":
            if negate or len(values) != 1 or values[0].lower() not in ("granted", "denied"):
                raise ValueError("expected 'Require all granted' or 'Require all denied'")
            if values[0].lower() == "granted":
                self.require_any.extend(_ALL)
            # 'denied' grants nobody: it only marks that a Require rule exists
        elif kind == "ip":
            if not values:
                raise ValueError("'Require ip' needs at least one address or network")
            networks = [parse_network(v) for v in values]
            (self.require_not if negate else self.require_any).extend(networks)
        elif kind == "local":
            if values:
                raise ValueError("'Require local' takes no arguments")
            (self.require_not if negate else self.require_any).extend(_LOCAL)
        elif kind in ("host", "forward-dns"):
            raise ValueError("host names are not supported (they need a DNS lookup per request)")
        else:
            raise ValueError(f"'Require {kind}' is not supported (only all, ip, local: pywsgi "
                             f"does no authentication)")
        self.has_require = True

    def extend(self, other: AccessRules) -> None:
        """Add another rule set's lines to this one (the same mount given twice)."""
        for line in other.directives:
            self.add_directive(line)

    # -- deciding
    def allows(self, remote_addr: str) -> bool:
        """Whether a client at `remote_addr` may be served; an unparsable address is denied
        whenever a rule is set."""
        if not self.has_compat and not self.has_require:
            return True
        try:
            address = _client_address(remote_addr)
        except ValueError:
            return False
        if self.has_compat and not self._compat_allows(address):
            return False
        if self.has_require:
            if _matches(address, self.require_not):
                return False
            return _matches(address, self.require_any)
        return True

    def _compat_allows(self, address) -> bool:
        allowed = _matches(address, self.allow)
        denied = _matches(address, self.deny)
        order = self.order or "deny,allow"
        if order == "allow,deny":
            return allowed and not denied
        if order == "deny,allow":
            return allowed or not denied
        return allowed and not denied  # mutual-failure

    def __bool__(self) -> bool:
        return self.has_compat or self.has_require

    def __repr__(self) -> str:
        return f"AccessRules({'; '.join(self.directives)!r})"
