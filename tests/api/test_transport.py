"""The transport: how replies become typed errors, over real HTTP, and its pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime
import json

import aiohttp
import pytest
from yarl import URL

from custom_components.chekt.api import (
    ChektClient,
    ChektCredentials,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    ChektResponseError,
    ChektUrlError,
    MediaKind,
    SigningKey,
    UploadTarget,
)
from custom_components.chekt.api.transport import (
    MAX_CLOUD_MESSAGE,
    HttpReply,
    is_loopback,
    parse_retry_after,
    validated_url,
)
from tests.simulator import ChektSimulator, Fault

from .helpers import JPEG, Canned, CannedServer, make_client, make_event

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def canned_client(canned: CannedServer, session: aiohttp.ClientSession) -> ChektClient:
    credentials = ChektCredentials(
        token_url=canned.url("/oauth/token"),
        client_id="c",
        signing_key=SigningKey.parse("a-secret-for-the-canned-server-0123456789"),
    )
    return ChektClient(session, api_url=canned.url("/"), credentials=credentials, request_timeout=5.0)


def canned_target(canned: CannedServer, path: str) -> UploadTarget:
    return UploadTarget(
        MediaKind.SNAPSHOT,
        upload_put_url=canned.url(path) + "?signature=top-secret",
        callback_put_url=canned.url(path) + "?access_token=top-secret",
    )


# -- replies that are neither success nor a 4xx/5xx --


@pytest.mark.parametrize("status", [301, 302, 307])
async def test_a_redirect_is_not_followed_and_is_a_response_error(
    canned: CannedServer, session: aiohttp.ClientSession, status: int
) -> None:
    # Following a redirect would send the media (or the token) somewhere the cloud did not sign for.
    canned.replies["/upload"] = Canned(status, headers={"Location": canned.url("/elsewhere")})
    client = canned_client(canned, session)
    with pytest.raises(ChektResponseError) as caught:
        await client.upload(canned_target(canned, "/upload"), JPEG)
    assert f"unexpected HTTP {status}" in str(caught.value)
    assert "top-secret" not in str(caught.value)
    assert canned.requested == ["/upload"]


async def test_a_not_modified_token_reply_is_a_response_error(
    canned: CannedServer, session: aiohttp.ClientSession
) -> None:
    canned.replies["/oauth/token"] = Canned(304)
    with pytest.raises(ChektResponseError):
        await canned_client(canned, session).authenticate()


# -- Retry-After as the cloud may send it --


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="HTTP date in the past"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="unreadable"),
        pytest.param(" 12 ", 12.0, id="seconds with spaces"),
    ],
)
async def test_rate_limit_retry_after_forms(
    canned: CannedServer, session: aiohttp.ClientSession, header: str, expected: float | None
) -> None:
    canned.replies["/callback"] = Canned(429, headers={"Retry-After": header})
    with pytest.raises(ChektRateLimitedError) as caught:
        await canned_client(canned, session).confirm_upload(canned_target(canned, "/callback"))
    assert caught.value.retry_after == expected


async def test_rate_limit_retry_after_as_a_future_http_date(
    canned: CannedServer, session: aiohttp.ClientSession
) -> None:
    canned.replies["/upload"] = Canned(429, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})
    with pytest.raises(ChektRateLimitedError) as caught:
        await canned_client(canned, session).upload(canned_target(canned, "/upload"), JPEG)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 365 * 24 * 3600
    assert "retry after" in str(caught.value)


def test_rate_limit_without_retry_after_says_no_wait() -> None:
    assert str(ChektRateLimitedError(None)) == "rate limited by the CHeKT cloud"


# -- what the cloud said went wrong --


async def test_s3_xml_error_message_is_read(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    receipt = await client.send_event(make_event(upload_snapshot_count=1))
    sim.inject(Fault("upload", "status", status=404))
    with pytest.raises(ChektRequestRejectedError) as caught:
        await client.upload(receipt.uploads.snapshots[0], JPEG)
    assert caught.value.status == 404
    assert caught.value.cloud_message
    assert caught.value.cloud_message != "HTTP 404 without an explanation"
    assert "<" not in caught.value.cloud_message


async def test_callback_error_carries_the_api_message(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    receipt = await client.send_event(make_event(upload_snapshot_count=1))
    sim.inject(Fault("callback", "status", status=410))
    with pytest.raises(ChektRequestRejectedError) as caught:
        await client.confirm_upload(receipt.uploads.snapshots[0])
    assert caught.value.status == 410
    assert caught.value.cloud_message == "injected status fault"


def _reply(body: object, status: int = 400) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(status, {}, raw)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"error": "Bad Request", "message": "location_id: missing"}, "location_id: missing"),
        pytest.param({"error": "invalid_client", "error_description": "unknown"}, "unknown", id="oauth"),
        pytest.param({"error": "access_denied"}, "access_denied", id="oauth without description"),
        pytest.param({"message": "", "error_description": "", "error": "x"}, "x", id="empty ones skipped"),
        pytest.param({"message": 5, "error": ["x"]}, "HTTP 400 without an explanation", id="not strings"),
        pytest.param([{"message": "in a list"}], "HTTP 400 without an explanation", id="JSON array"),
        pytest.param(b"<html>Bad Gateway</html>", "HTTP 400 without an explanation", id="HTML"),
        pytest.param(b"\xff\xfe\x00garbage", "HTTP 400 without an explanation", id="not UTF-8"),
        pytest.param(b"", "HTTP 400 without an explanation", id="empty body"),
    ],
)
def test_cloud_message(body: object, expected: str) -> None:
    assert _reply(body).cloud_message() == expected


def test_cloud_message_is_kept_short() -> None:
    message = _reply({"message": "x" * 5000}).cloud_message()
    assert message == "x" * MAX_CLOUD_MESSAGE


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"\xff"])
def test_json_object_refuses_anything_but_an_object(body: bytes) -> None:
    with pytest.raises(ChektResponseError, match="HTTP 200"):
        HttpReply(200, {}, body).json_object()


# -- Retry-After parsing --


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Fri, 27 Nov 2026 12:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 12:00:30 +0100", 0.0),
        ("Fri, 27 Nov 2026 11:00:00 GMT", 0.0),
        # -0000 means "UTC, origin unknown" and parses to a naive datetime.
        ("Fri, 27 Nov 2026 12:01:00 -0000", 60.0),
        ("soon", None),
        ("Fri, 32 Nov 2026 12:00:30 GMT", None),
        ("Fri, 27 Nov 99999 12:00:30 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_defaults_to_the_current_time() -> None:
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


# -- URLs --


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.localdomain", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("::2", False),
        ("api.chekt.com", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("http://[::1", id="unclosed IPv6"),
        pytest.param("https://[zz]/", id="bad IPv6"),
        pytest.param("https://api.chekt.com:99999/", id="port out of range"),
    ],
)
def test_validated_url_refuses_what_yarl_cannot_read(value: str) -> None:
    with pytest.raises(ChektUrlError) as caught:
        validated_url("api_url", value)
    assert caught.value.field == "api_url"
    assert "is not a URL" in str(caught.value)
    assert not caught.value.insecure


@pytest.mark.parametrize(
    "value",
    [None, "/relative/path", "https://", "mailto:ops@example.com", "https://:pw@api.chekt.com"],
)
def test_validated_url_refuses_other_non_urls(value: object) -> None:
    with pytest.raises(ChektUrlError) as caught:
        validated_url("token_url", value)  # type: ignore[arg-type]
    assert caught.value.field == "token_url"
    assert not caught.value.insecure


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  https://api.chekt.com/base  ", "https://api.chekt.com/base"),
        ("http://localhost:8123", "http://localhost:8123"),
        ("http://127.0.0.1:1/oauth/token", "http://127.0.0.1:1/oauth/token"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
    ],
)
def test_validated_url_accepts(value: str, expected: str) -> None:
    assert validated_url("api_url", value) == URL(expected)
