"""Which webhook targets are allowed: http(s) URLs to public addresses only, checked when a URL
is given (``check_url``) and again on every delivery, after resolving its name
(``resolve_checked``), so that a name that later resolves to this machine or to the private
network (DNS rebinding) is refused too."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that mean this machine without asking any resolver (RFC 6761, and Debian's /etc/hosts).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and 8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_HINT = " (allow_private lets a receiver on this machine or on a private network through)"


class RefusedTarget(ValueError):
    """A webhook URL or address that is not delivered to; the message says why."""


def check_url(url: str, allow_private: bool) -> str:
    """``url`` normalised (scheme and host in lower case, default port and fragment dropped,
    ``/`` for an empty path), or ``RefusedTarget`` naming what is wrong with it.

    Refused: anything but http and https, no host, a user or password in the URL and, unless
    ``allow_private``, a host that is a loopback, private, link-local, multicast, reserved or
    unspecified address, in any spelling (``127.1``, ``2130706433``, ``0x7f.0.0.1``, ``0``,
    ``[::ffff:127.0.0.1]`` ...), or a name of this machine (``localhost``, ``*.localhost``).
    Other names are checked when they are resolved, on every delivery (``resolve_checked``).
    """
    text = url.strip()
    shown = _without_credentials(text)
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise RefusedTarget(f"webhook URL {shown!r}: {_lower(exc)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        got = f"{scheme}://" if scheme else "a URL without a scheme"
        raise RefusedTarget(
            f"webhook URL {shown!r}: only http:// and https:// are allowed, not {got}"
        )
    if "@" in parts.netloc:
        raise RefusedTarget(
            f"webhook URL {shown!r}: credentials (user:password@) in the URL are refused; "
            "receivers check the signature instead"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"webhook URL {shown!r}: {_lower(exc)}") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedTarget(f"webhook URL {shown!r}: no host")
    if not allow_private:
        reason = host_refusal(host)
        if reason:
            raise RefusedTarget(f"webhook URL {shown!r}: {reason}{_HINT}")
    ip = literal_ip(host)
    shown = host if ip is None else str(ip)
    netloc = f"[{shown}]" if ":" in shown else shown
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def shown_target(url: str) -> str:
    """``url`` as a log line shows it: its scheme and host, then ``/…`` and a short digest of
    the rest in place of its path and query. Receivers often put their secret there (a chat
    service's ``/services/T0/B0/<token>``, a ``?key=``); the digest still tells two targets
    of one host apart and finds a target's lines in the log from its URL."""
    parts = urlsplit(url)
    rest = urlunsplit(("", "", parts.path, parts.query, ""))
    if rest in ("", "/"):
        return url
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/… #{digest}"


def _without_credentials(url: str) -> str:
    """The URL as it may be shown: without what stands before an ``@`` in its authority."""
    scheme, sep, rest = url.partition("//")
    if not sep:
        return url.rpartition("@")[2] if "@" in url.split("/")[0] else url
    authority, slash, tail = rest.partition("/")
    return f"{scheme}//{authority.rpartition('@')[2]}{slash}{tail}"


def _lower(exc: Exception) -> str:
    text = str(exc)
    return text[:1].lower() + text[1:]


def host_refusal(host: str) -> str | None:
    """Why a URL's host (a name or an IP literal in any spelling) is refused, or None if it
    may be a public address."""
    name = host.lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return f"{host} is this machine (loopback)"
    ip = literal_ip(name)
    return None if ip is None else address_refusal(ip)


def address_refusal(ip: IPAddress) -> str | None:
    """Why an address is refused as a webhook target, or None if it is a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and _kind(embedded):
            return f"{ip} (IPv6 for {embedded}) is {_a(_kind(embedded))} address"
    kind = _kind(ip)
    return None if kind is None else f"{ip} is {_a(kind)} address"


def _kind(ip: IPAddress) -> str | None:
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "non-public"


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names by itself, or None for a name. Besides the usual forms this
    reads the ones ``inet_aton`` accepts, that resolvers turn into addresses too: one to four
    parts, each decimal, octal (``0`` first) or hexadecimal (``0x``), the last one filling
    the remaining bytes (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``0``)."""
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part[0] == "0":
                values.append(int(part[1:], 8))
            else:
                values.append(int(part, 10) if part.isdigit() else -1)
        except ValueError:
            return None
    if any(v < 0 for v in values):
        return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    return ipaddress.IPv4Address(number << (8 * (4 - len(head))) | last)


async def resolve_checked(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses to connect to for ``host``, in the resolver's order, every one of them
    checked: if ANY is refused, the whole name is (a name that resolves to a public and a
    private address is a rebinding attempt). Connect to one of these, never resolve again.

    Raises ``RefusedTarget``, or ``OSError`` (``socket.gaierror``) when the name does not
    resolve."""
    name = host.strip("[]").rstrip(".")
    if not allow_private:
        reason = host_refusal(name)
        if reason:
            raise RefusedTarget(f"{reason}{_HINT}")
    ip = literal_ip(name)
    if ip is not None:
        return [str(ip)]
    infos = await asyncio.get_running_loop().getaddrinfo(
        name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{name} resolves to no address")
    if not allow_private:
        for address in addresses:
            reason = address_refusal(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise RefusedTarget(f"{name} resolves to {address}: {reason}{_HINT}")
    return addresses
