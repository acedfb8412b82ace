"""Webhook targets: the whole class of refused URLs in their many spellings, what passes and
how it is normalised, and the check of every resolved address (DNS rebinding)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from dacirco.webhooks import RefusedTarget, check_url, resolve_checked
from dacirco.webhooks.addresses import shown_target

LOOPBACK = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.255.255.254/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0x7F.1/",
    "http://0177.0.0.1/",  # octal
    "http://017700000001/",
    "http://127.0.0.1./",  # a trailing dot
    "http://localhost/",
    "http://LOCALHOST:8000/",
    "http://localhost./",
    "http://api.localhost/",
    "http://ip6-localhost/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::127.0.0.1]/",  # NAT64 around 127.0.0.1
    "https://127.0.0.1/",
]
UNSPECIFIED = ["http://0/", "http://0.0.0.0/", "http://0x0/", "http://[::]/", "http://000/"]
PRIVATE = [
    "http://10.0.0.1/",
    "http://10.1/",
    "http://167772161/",  # 10.0.0.1
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://0xc0.0xa8.1.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.0.1]/",
    "http://100.64.0.1/",  # shared address space (carrier-grade NAT)
]
LINK_LOCAL = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:169.254.169.254]/",
]
MULTICAST_RESERVED = [
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.1/",  # documentation
    "http://198.18.0.1/",  # benchmarking
]


@pytest.mark.parametrize("url", LOOPBACK + UNSPECIFIED + PRIVATE + LINK_LOCAL + MULTICAST_RESERVED)
def test_private_targets_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(RefusedTarget) as info:
        check_url(url, allow_private=False)
    message = str(info.value)
    assert "allow_private" in message
    assert any(
        word in message
        for word in (
            "loopback",
            "private",
            "link-local",
            "multicast",
            "reserved",
            "unspecified",
            "non-public",
        )
    ), message


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.1/", "127.0.0.1 is a loopback address"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        ("http://0/", "0.0.0.0 is an unspecified address"),
        ("http://[::ffff:10.0.0.1]/", "(IPv6 for 10.0.0.1) is a private address"),
        ("http://169.254.169.254/", "169.254.169.254 is a link-local address"),
        ("http://localhost/", "localhost is this machine"),
        ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ],
)
def test_the_message_names_the_address_and_its_kind(url: str, kind: str) -> None:
    with pytest.raises(RefusedTarget, match=kind.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://example.com/", "only http:// and https://"),
        ("example.com/hook", "only http:// and https://"),
        ("//example.com/hook", "only http:// and https://"),
        ("http://", "no host"),
        ("https:///path", "no host"),
        ("http://:8080/", "no host"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://:pass@example.com/", "credentials"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:port/", "port"),
    ],
)
def test_malformed_urls_refused_whatever_allow_private(url: str, words: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(RefusedTarget, match=words):
            check_url(url, allow_private=allow_private)


def test_credentials_are_not_echoed() -> None:
    with pytest.raises(RefusedTarget) as info:
        check_url("https://alice:hunter2@example.com/hook", allow_private=False)
    assert "hunter2" not in str(info.value)
    assert "alice" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://hooks.example.com/dacirco?x=1", "https://hooks.example.com/dacirco?x=1"),
        ("HTTPS://Hooks.Example.COM:443/a#frag", "https://hooks.example.com/a"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/", "http://example.com:8080/"),
        ("  http://8.8.8.8/x  ", "http://8.8.8.8/x"),
        ("http://[2001:4860:4860::8888]:8443/", "http://[2001:4860:4860::8888]:8443/"),
        ("http://134744072/", "http://8.8.8.8/"),  # a public address in another spelling
    ],
)
def test_public_targets_pass_normalised(url: str, normalised: str) -> None:
    assert check_url(url, allow_private=False) == normalised


@pytest.mark.parametrize("url", LOOPBACK + PRIVATE + LINK_LOCAL + ["http://0/"])
def test_allow_private_lets_every_http_target_through(url: str) -> None:
    assert check_url(url, allow_private=True).startswith(("http://", "https://"))


def test_allow_private_keeps_the_receivers_of_this_machine() -> None:
    assert check_url("http://127.0.0.1:8123/hook", allow_private=True) == (
        "http://127.0.0.1:8123/hook"
    )
    assert check_url("http://127.1:8123", allow_private=True) == "http://127.0.0.1:8123/"


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, **_kwargs):  # type: ignore[no-untyped-def]
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in table[host]
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_resolve_refuses_a_name_if_any_address_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(
        monkeypatch,
        {
            "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
            "rebind.example": ["93.184.216.34", "127.0.0.1"],
            "inside.example": ["10.0.0.7"],
            "mapped.example": ["::ffff:192.168.0.1"],
        },
    )
    assert await resolve_checked("public.example", 443, False) == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    with pytest.raises(RefusedTarget, match=r"rebind.example resolves to 127\.0\.0\.1"):
        await resolve_checked("rebind.example", 443, False)
    with pytest.raises(RefusedTarget, match="private"):
        await resolve_checked("inside.example", 80, False)
    with pytest.raises(RefusedTarget, match="private"):
        await resolve_checked("mapped.example", 80, False)
    assert await resolve_checked("rebind.example", 443, True) == ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(OSError):
        await resolve_checked("nowhere.example", 80, False)


async def test_resolve_literals_and_this_machine_without_a_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(monkeypatch, {})  # nothing resolves: literals need no resolver
    assert await resolve_checked("8.8.8.8", 80, False) == ["8.8.8.8"]
    assert await resolve_checked("[::1]", 80, True) == ["::1"]
    assert await resolve_checked("127.1", 80, True) == ["127.0.0.1"]
    for host in ("127.1", "localhost", "[::1]", "0"):
        with pytest.raises(RefusedTarget):
            await resolve_checked(host, 80, False)


async def test_resolve_localhost_for_real_when_allowed() -> None:
    addresses = await resolve_checked("localhost", 80, True)
    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX",
        "https://hooks.example.com/hook?token=abcdef123456",
        "https://user:pw@hooks.example.com:8443/a/b",
    ],
)
def test_a_target_is_shown_without_its_path_or_query(url):
    shown = shown_target(url)
    assert shown.startswith(("https://hooks.example.com/… #", "https://hooks.example.com:8443/… #"))
    assert "secret" not in shown and "token" not in shown and "pw" not in shown
    assert shown != shown_target(url + "x")  # two targets of one host told apart
    assert shown_target("https://hooks.example.com/") == "https://hooks.example.com/"
