"""One delivery attempt: the target's name resolved and checked, the body signed and POSTed to
the checked address, and the outcome said in a few words (None when delivered)."""

from __future__ import annotations

import asyncio
import errno

import httpx

from dacirco.webhooks import signing
from dacirco.webhooks.addresses import RefusedTarget, resolve_checked


def new_client(timeout: float) -> httpx.AsyncClient:
    """The HTTP client of deliveries: no redirect is followed (a 3xx is a failure), no proxy
    from the environment, and no connection kept between deliveries: every request goes to an
    address just checked, with the TLS name of the URL it was checked for."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def post(
    client: httpx.AsyncClient,
    secret: bytes,
    url: str,
    event_id: str,
    body: bytes,
    *,
    timestamp: int,
    timeout: float,
    allow_private: bool,
) -> str | None:
    """POST one signed delivery; None if the receiver answered 2xx, else why not (``HTTP 500
    Internal Server Error``, ``timed out after 10 s``, ``connection refused`` ...). The
    whole attempt, from resolving to the answer's headers, takes at most ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            return await _post(client, secret, url, event_id, body, timestamp, allow_private)
    except TimeoutError:
        return f"timed out after {timeout:g} s"
    except Exception as exc:  # an attempt fails, it never stops the deliverer
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _post(
    client: httpx.AsyncClient,
    secret: bytes,
    url: str,
    event_id: str,
    body: bytes,
    timestamp: int,
    allow_private: bool,
) -> str | None:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"invalid URL: {exc}"
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        addresses = await resolve_checked(host, port, allow_private)
    except RefusedTarget as exc:
        return f"refused: {exc}"
    except OSError as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    headers = signing.headers(secret, event_id, body, timestamp)
    headers["Host"] = target.netloc.decode("ascii")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    error = "no address"
    for address in addresses:  # the next address only if this one could not be reached
        request = client.build_request(
            "POST",
            target.copy_with(host=address),
            content=body,
            headers=headers,
            extensions=extensions,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            error = _connect_error(exc)
            continue
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        try:
            if response.is_success:
                return None
            what = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
            return f"{what} (redirects are not followed)" if response.is_redirect else what
        finally:
            await response.aclose()  # the answer's body is not read
    return error


def _connect_error(exc: BaseException) -> str:
    """``connection refused`` when that is what happened, else the error's own words."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or (
            isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(seen, BaseExceptionGroup) and any(
            _connect_error(e) == "connection refused" for e in seen.exceptions
        ):
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return f"connection failed: {text}" if text else "connection failed"
