"""Event replies and their upload targets: URLs the client cannot use, and when a pre-signed URL expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
import json

import aiohttp
import pytest
from yarl import URL

from custom_components.chekt.api import ChektResponseError, MediaKind, UploadTarget, format_time
from custom_components.chekt.api.models import url_expiry
from tests.simulator import ChektSimulator, Fault

from .helpers import EVENT_TIME, make_client, make_event


def _receipt_with_snapshot(upload_put_url: str, callback_put_url: str = "https://cb.example/x") -> str:
    target = {"seq": 0, "upload_put_url": upload_put_url, "callback_put_url": callback_put_url}
    return json.dumps({"event_id": "e", "response_id": "r", "status": "accepted", "uploads": {"snapshots": [target]}})


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://s3.example.com:99999/x?signature=top-secret", id="port out of range"),
        pytest.param("https://[s3.example.com/x?signature=top-secret", id="unclosed bracket"),
        pytest.param("https://?signature=top-secret", id="no host"),
        pytest.param("https:///x?signature=top-secret", id="empty host"),
    ],
)
async def test_unusable_upload_url_is_a_response_error(
    sim: ChektSimulator, session: aiohttp.ClientSession, url: str
) -> None:
    # Found at once, as a malformed reply, instead of as a ValueError deep inside a later upload.
    client = make_client(sim, session)
    await client.authenticate()
    sim.inject(Fault("events", "malformed_reply", body=_receipt_with_snapshot(url)))
    with pytest.raises(ChektResponseError) as caught:
        await client.send_event(make_event(upload_snapshot_count=1))
    assert "uploads.snapshots[0].upload_put_url" in str(caught.value)
    assert "top-secret" not in str(caught.value)


async def test_unusable_callback_url_is_a_response_error(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    body = _receipt_with_snapshot("https://s3.example.com/x", "https://cb.example:0x50/x?access_token=t")
    sim.inject(Fault("events", "malformed_reply", body=body))
    with pytest.raises(ChektResponseError, match="callback_put_url"):
        await client.send_event(make_event(upload_snapshot_count=1))


async def test_naive_send_time_is_refused_before_anything_is_sent(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    client = make_client(sim, session)
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.send_event(make_event(), sent_at=datetime(2026, 11, 27, 12, 0, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.send_event(make_event(event_time=EVENT_TIME.replace(tzinfo=None)))
    assert sim.token_requests == []
    assert sim.events == []


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (EVENT_TIME, "2026-11-27T12:00:00.123Z"),
        (datetime(2026, 11, 27, 13, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1))), "2026-11-27T12:00:00.999Z"),
        (datetime(2026, 11, 27, 7, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-11-27T12:00:00.000Z"),
        (datetime(2026, 11, 27, 12, 0, tzinfo=UTC), "2026-11-27T12:00:00.000Z"),
    ],
)
def test_format_time_is_utc_with_milliseconds(moment: datetime, expected: str) -> None:
    assert format_time(moment) == expected


def test_format_time_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 11, 27, 12, 0))  # noqa: DTZ001


# -- how long a pre-signed upload URL lasts --


async def test_simulator_upload_url_says_when_it_expires(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    receipt = await make_client(sim, session).send_event(make_event(upload_snapshot_count=1))
    target = receipt.uploads.snapshots[0]
    expires = int(URL(target.upload_put_url, encoded=True).query["expires"])
    assert target.expires_at == datetime.fromtimestamp(expires, UTC)


S3 = "https://bucket.s3.amazonaws.com/cam/0.jpg"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"{S3}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261127T120000Z&X-Amz-Expires=300&X-Amz-Signature=s",
            datetime(2026, 11, 27, 12, 5, tzinfo=UTC),
            id="S3 v4",
        ),
        pytest.param(
            f"{S3}?AWSAccessKeyId=k&Expires=1795780800&Signature=s",
            datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
            id="S3 v2",
        ),
        pytest.param(f"{S3}?expires=1795780800&signature=s", datetime(2026, 11, 27, 12, 0, tzinfo=UTC), id="sim"),
        pytest.param(f"{S3}?signature=s", None, id="no expiry"),
        pytest.param(
            f"{S3}?X-Amz-Date=20261127T120000Z&Expires=1795780800",
            datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
            id="v4 date without lifetime falls back to Expires",
        ),
        pytest.param(f"{S3}?X-Amz-Date=20261127T120000Z&X-Amz-Expires=5m", None, id="v4 lifetime not seconds"),
        pytest.param(f"{S3}?X-Amz-Date=2026-11-27&X-Amz-Expires=300", None, id="v4 date unreadable"),
        pytest.param(f"{S3}?X-Amz-Date=99991231T235959Z&X-Amz-Expires=60", None, id="v4 beyond year 9999"),
        pytest.param(f"{S3}?X-Amz-Date=20261127T120000Z&X-Amz-Expires=%C2%B2", None, id="v4 superscript digit"),
        pytest.param(f"{S3}?X-Amz-Date=20261127T120000Z&X-Amz-Expires={10**15}", None, id="v4 huge lifetime"),
        pytest.param(f"{S3}?Expires={10**17}", None, id="v2 beyond any date"),
        pytest.param(f"{S3}?Expires={'9' * 5000}", None, id="v2 more digits than int() reads"),
        pytest.param(f"{S3}?Expires=%C2%B2", None, id="v2 superscript digit"),
        pytest.param(f"{S3}?Expires=-5", None, id="v2 negative"),
        pytest.param("https://[bucket/x?Expires=1795780800", None, id="not a URL"),
    ],
)
def test_upload_url_expiry(url: str, expected: datetime | None) -> None:
    target = UploadTarget(MediaKind.SNAPSHOT, upload_put_url=url, callback_put_url="https://cb.example/x")
    assert target.expires_at == expected
    assert url_expiry(url) == expected
