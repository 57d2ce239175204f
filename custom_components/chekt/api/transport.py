"""The one place that sends a request to CHeKT and turns what comes back into a reply or a typed error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
import ipaddress
import json
import re
from typing import Any

import aiohttp
from yarl import URL

from .errors import (
    ChektConnectionError,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    ChektResponseError,
    ChektServerError,
    ChektTimeoutError,
    ChektUrlError,
)

# Cloud error bodies are echoed into logs and repair issues: keep them short.
MAX_CLOUD_MESSAGE = 300
_S3_MESSAGE = re.compile(r"<Message>([^<]{1,1000})</Message>")


@dataclass(frozen=True, slots=True)
class HttpReply:
    """Status, headers and body of a reply that arrived in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or `ChektResponseError`."""
        try:
            value = json.loads(self.body)
        except ValueError as err:
            raise ChektResponseError(
                f"the CHeKT cloud answered HTTP {self.status} with a body that is not JSON"
            ) from err
        if not isinstance(value, dict):
            raise ChektResponseError(f"the CHeKT cloud answered HTTP {self.status} with JSON that is not an object")
        return value

    def cloud_message(self) -> str:
        """What the cloud said went wrong, from the spec's `message` or OAuth's `error_description`."""
        try:
            value = json.loads(self.body)
        except ValueError:
            value = None
        if isinstance(value, dict):
            for key in ("message", "error_description", "error"):
                if isinstance(value.get(key), str) and value[key]:
                    return str(value[key])[:MAX_CLOUD_MESSAGE]
        # Pre-signed URLs belong to S3, whose errors are XML: <Error><Code/><Message/></Error>.
        if match := _S3_MESSAGE.search(self.body.decode(errors="replace")):
            return match.group(1).strip()[:MAX_CLOUD_MESSAGE]
        return f"HTTP {self.status} without an explanation"


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    data: bytes | None = None,
    what: str,
) -> HttpReply:
    """Send one request and read the whole reply; transport failures become typed errors.

    `what` names the request in error messages instead of its URL, which may carry credentials.
    """
    try:
        async with session.request(
            method,
            url,
            headers=headers,
            json=json_body,
            data=form if form is not None else data,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            body = await response.read()
            return HttpReply(response.status, dict(response.headers), body)
    except TimeoutError:
        raise ChektTimeoutError(f"the CHeKT cloud did not answer the {what} within {timeout:g} s") from None
    except aiohttp.ClientError as err:
        # aiohttp's messages can quote the URL; say only what kind of failure it was.
        raise ChektConnectionError(
            f"the {what} failed: {type(err).__name__}",
            request_sent=not isinstance(err, aiohttp.ClientConnectorError),
        ) from None


def raise_for_status(reply: HttpReply, *, expected: tuple[int, ...]) -> None:
    """Raise the error a caller can act on when the status is not one of `expected` (401 is the caller's)."""
    status = reply.status
    if status in expected:
        return
    if status == 429:
        raise ChektRateLimitedError(parse_retry_after(reply.headers.get("Retry-After")))
    if status >= 500:
        raise ChektServerError(status)
    if 400 <= status < 500:
        raise ChektRequestRejectedError(status, reply.cloud_message())
    raise ChektResponseError(f"the CHeKT cloud answered with an unexpected HTTP {status}")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except TypeError, ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, the only hosts plain http is allowed to."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validated_url(field: str, value: str) -> URL:
    """An absolute https URL (http only for loopback), or `ChektUrlError` naming the field."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        url = URL(text)
    except TypeError, ValueError:
        raise ChektUrlError(field, f"{field} is not a URL") from None
    if url.scheme not in {"http", "https"} or not url.host or not url.is_absolute():
        raise ChektUrlError(field, f"{field} must be an absolute http(s) URL")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ChektUrlError(field, f"{field} must use https (plain http only for loopback)", insecure=True)
    if url.user or url.password:
        raise ChektUrlError(field, f"{field} must not carry a user name or password")
    return url
