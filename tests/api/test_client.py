"""The CHeKT client against the local CHeKT cloud over real HTTP on 127.0.0.1: no mocks of our own code."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json

import aiohttp
import pytest

from custom_components.chekt.api import (
    ChektAuthError,
    ChektClient,
    ChektConnectionError,
    ChektCredentials,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    ChektResponseError,
    ChektServerError,
    ChektTimeoutError,
    ChektUrlError,
    DeliveryStatus,
    EventType,
    MediaKind,
    SigningKey,
    UploadTarget,
)
from tests.simulator import ChektSimulator, Fault

from .helpers import EVENT_TIME, JPEG, SECRET, make_client, make_event
from .keys import ec_key, private_pem, public_pem, rsa_key


async def test_event_is_sent_as_the_spec_says(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    sent_at = EVENT_TIME + timedelta(seconds=1)
    receipt = await client.send_event(make_event(), sent_at=sent_at)

    assert receipt.status is DeliveryStatus.ACCEPTED
    assert receipt.accepted
    assert receipt.event_id == "1764244800123456"
    assert receipt.reason is None
    assert [target.seq for target in receipt.uploads.snapshots] == [0, 1]
    assert receipt.uploads.short_mp4 is None
    record = sim.events[-1]
    assert record.body == {
        "version": "1.0",
        "location_id": "LOC1",
        "recorder_id": "REC1",
        "camera_id": "CAM1",
        "event_id": "1764244800123456",
        "event_type": "alarm",
        "event_status": "active",
        "event_time": "2026-11-27T12:00:00.123Z",
        "sent_at": "2026-11-27T12:00:01.123Z",
        "should_signal_to_monitoring_center": True,
        "upload_snapshot_count": 2,
        "upload_short_mp4": False,
        "upload_event_mp4": False,
        "payload": {"entity_id": "binary_sensor.front_door"},
    }
    assert record.headers["Authorization"].startswith("Bearer ")
    assert record.headers["X-API-KEY"] == "the-api-key"
    assert record.headers["Idempotency-Key"] == "1764244800123456"


async def test_recorder_id_is_left_out_when_absent(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session, api_key=None)
    sim.add_client("no-api-key", secret=SECRET)
    client = make_client(sim, session, client_id="no-api-key", audience=None, api_key=None)
    event = make_event(
        recorder_id=None,
        event_type=EventType.ARMING,
        upload_snapshot_count=0,
        payload={"arming_state": "armed_away"},
    )
    await client.send_event(event)
    record = sim.events[-1]
    assert "recorder_id" not in record.body
    assert "X-API-KEY" not in record.headers
    assert record.body["payload"] == {"arming_state": "armed_away"}


async def test_clip_targets_are_parsed(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    receipt = await make_client(sim, session).send_event(
        make_event(upload_snapshot_count=0, upload_short_mp4=True, upload_event_mp4=True)
    )
    assert receipt.uploads.snapshots == ()
    assert receipt.uploads.short_mp4 is not None
    assert receipt.uploads.short_mp4.kind is MediaKind.SHORT_MP4
    assert receipt.uploads.event_mp4 is not None
    assert [t.kind for t in receipt.uploads.all()] == [MediaKind.SHORT_MP4, MediaKind.EVENT_MP4]


async def test_discarded_event_for_a_disarmed_location(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    sim.disarmed_locations.add("LOC1")
    receipt = await make_client(sim, session).send_event(make_event())
    assert receipt.status is DeliveryStatus.DISCARDED
    assert not receipt.accepted
    assert receipt.reason
    assert receipt.uploads.all() == ()


async def test_upload_and_callback(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    receipt = await client.send_event(make_event(upload_snapshot_count=1))
    target = receipt.uploads.snapshots[0]
    await client.upload(target, JPEG)
    await client.confirm_upload(target)

    upload = sim.uploads[-1]
    assert upload.data == JPEG
    assert upload.content_type == "image/jpeg"
    assert upload.valid_media
    callback = sim.callbacks[-1]
    assert callback.upload_preceded
    assert (callback.kind, callback.seq) == ("snapshot", 0)
    assert not sim.malformed


async def test_expired_upload_url_is_rejected(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    async with ChektSimulator(upload_ttl=0.0) as sim:
        sim.add_client("hs-client", secret=SECRET, audience="events-api", api_key="the-api-key")
        client = make_client(sim, session)
        receipt = await client.send_event(make_event(upload_snapshot_count=1))
        await asyncio.sleep(0.01)
        with pytest.raises(ChektRequestRejectedError) as caught:
            await client.upload(receipt.uploads.snapshots[0], JPEG)
        assert caught.value.status == 403
        # The pre-signed URL is a credential: it must not leak through the error.
        assert "signature" not in str(caught.value)
        assert receipt.uploads.snapshots[0].upload_put_url not in repr(receipt.uploads.snapshots[0])


@pytest.mark.parametrize(
    ("key", "register"),
    [
        pytest.param(lambda: private_pem(rsa_key()), lambda: public_pem(rsa_key()), id="RS256"),
        pytest.param(lambda: private_pem(ec_key()), lambda: public_pem(ec_key()), id="ES256"),
    ],
)
async def test_public_key_clients(
    sim: ChektSimulator, session: aiohttp.ClientSession, key: object, register: object
) -> None:
    sim.add_client("pk-client", public_key_pem=register(), key_id="key-1")  # type: ignore[operator]
    client = make_client(sim, session, client_id="pk-client", key=key(), key_id="key-1", audience=None)  # type: ignore[operator]
    receipt = await client.send_event(make_event())
    assert receipt.accepted
    assert sim.token_requests[-1].status == 200


async def test_token_is_cached(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    for index in range(3):
        await client.send_event(make_event(f"17642448001234{index:02d}"))
    assert len(sim.token_requests) == 1
    assert client.tokens.expires_at > 0


async def test_one_token_request_for_50_concurrent_sends(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    receipts = await asyncio.gather(*(client.send_event(make_event(f"1764244800{index:06d}")) for index in range(50)))
    assert all(receipt.accepted for receipt in receipts)
    assert len(sim.token_requests) == 1
    assert client.tokens.requests_made == 1
    assert len(sim.accepted) == 50


async def test_token_is_renewed_before_it_expires(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    # A token that lives less than the renewal margin is renewed for every request.
    async with ChektSimulator(token_ttl=30) as sim:
        sim.add_client("hs-client", secret=SECRET, audience="events-api", api_key="the-api-key")
        client = make_client(sim, session)
        await client.send_event(make_event("1764244800000001"))
        await client.send_event(make_event("1764244800000002"))
        assert len(sim.token_requests) == 2


async def test_401_renews_the_token_once_and_retries(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.send_event(make_event("1764244800000001"))
    sim.revoke_tokens()
    receipt = await client.send_event(make_event("1764244800000002"))
    assert receipt.accepted
    assert len(sim.token_requests) == 2
    assert [record.status for record in sim.events] == [201, 401, 201]


async def test_repeated_401_is_an_auth_error(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    sim.inject(Fault("events", "unauthorized", count=2))
    with pytest.raises(ChektAuthError):
        await make_client(sim, session).send_event(make_event())
    assert len(sim.token_requests) == 2


@pytest.mark.parametrize(
    ("client_id", "key", "audience"),
    [
        pytest.param("hs-client", "the-wrong-secret-0123456789-0123456789", "events-api", id="wrong secret"),
        pytest.param("nobody", SECRET, "events-api", id="unknown client"),
        pytest.param("hs-client", SECRET, "another-api", id="wrong audience"),
    ],
)
async def test_bad_credentials(
    sim: ChektSimulator, session: aiohttp.ClientSession, client_id: str, key: str, audience: str
) -> None:
    client = make_client(sim, session, client_id=client_id, key=key, audience=audience)
    with pytest.raises(ChektAuthError) as caught:
        await client.authenticate()
    assert key not in str(caught.value)


async def test_rate_limited_with_retry_after(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    sim.inject(Fault("events", "rate_limit", retry_after=7))
    with pytest.raises(ChektRateLimitedError) as caught:
        await client.send_event(make_event())
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(sim: ChektSimulator, session: aiohttp.ClientSession, status: int) -> None:
    client = make_client(sim, session)
    sim.inject(Fault("events", "status", status=status))
    with pytest.raises(ChektServerError) as caught:
        await client.send_event(make_event())
    assert caught.value.status == status


async def test_token_endpoint_server_error(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    sim.inject(Fault("token", "status", status=500))
    with pytest.raises(ChektServerError):
        await make_client(sim, session).authenticate()


async def test_rejected_request_carries_the_cloud_message(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    with pytest.raises(ChektRequestRejectedError) as caught:
        await client.send_event(make_event(location_id=""))
    assert caught.value.status == 400
    assert "location_id" in caught.value.cloud_message
    sim.malformed.clear()  # this malformed request was the point of the test


async def test_wrong_api_key_is_forbidden(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ChektRequestRejectedError) as caught:
        await make_client(sim, session, api_key="wrong").send_event(make_event())
    assert caught.value.status == 403


async def test_same_event_id_with_another_body_conflicts(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.send_event(make_event())
    with pytest.raises(ChektRequestRejectedError) as caught:
        await client.send_event(make_event(camera_id="CAM2"))
    assert caught.value.status == 409
    sim.malformed.clear()


async def test_retry_after_a_lost_reply_is_not_a_second_alarm(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    sim.inject(Fault("events", "lose_reply"))
    with pytest.raises(ChektConnectionError):
        await client.send_event(make_event())
    receipt = await client.send_event(make_event())
    assert receipt.accepted
    assert len(sim.accepted) == 1
    assert sim.duplicate_accepts == 0


async def test_dropped_connection(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    sim.inject(Fault("events", "drop"))
    with pytest.raises(ChektConnectionError):
        await client.send_event(make_event())


async def test_cloud_down_then_back_on_the_same_port(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    await sim.stop()
    with pytest.raises(ChektConnectionError):
        await client.send_event(make_event())
    await sim.start()
    assert (await client.send_event(make_event())).accepted


async def test_timeout(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session, timeout=0.2)
    await client.authenticate()
    sim.inject(Fault("events", "delay", seconds=1.0))
    with pytest.raises(ChektTimeoutError):
        await client.send_event(make_event())


def _reply(**fields: object) -> str:
    return json.dumps({"event_id": "e", "response_id": "r", "status": "accepted"} | fields)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '{"status": "accepted"}',
        _reply(status="maybe"),
        _reply(reason=5),
        _reply(uploads=[]),
        _reply(uploads={"snapshots": {}}),
        _reply(uploads={"snapshots": [1]}),
        _reply(uploads={"snapshots": [{"seq": True}]}),
        _reply(uploads={"short_mp4": {"upload_put_url": "ftp://x", "callback_put_url": "https://x"}}),
    ],
)
async def test_malformed_reply(sim: ChektSimulator, session: aiohttp.ClientSession, body: str) -> None:
    client = make_client(sim, session)
    await client.authenticate()
    sim.inject(Fault("events", "malformed_reply", body=body))
    with pytest.raises(ChektResponseError):
        await client.send_event(make_event())


@pytest.mark.parametrize(
    "body",
    [
        '{"token_type": "Bearer"}',
        '{"access_token": "abc", "token_type": "mac"}',
        "[]",
    ],
)
async def test_malformed_token_reply(sim: ChektSimulator, session: aiohttp.ClientSession, body: str) -> None:
    sim.inject(Fault("token", "malformed_reply", body=body))
    with pytest.raises(ChektResponseError):
        await make_client(sim, session).authenticate()


@pytest.mark.parametrize(
    ("field", "url", "insecure"),
    [
        ("token_url", "not a url", False),
        ("token_url", "ftp://auth.example.com/oauth/token", False),
        ("token_url", "http://auth.example.com/oauth/token", True),
        ("api_url", "http://api.chekt.com", True),
        ("api_url", "https://user:pw@api.chekt.com", False),
        ("api_url", "", False),
    ],
)
async def test_bad_urls_fail_at_construction(
    session: aiohttp.ClientSession, field: str, url: str, insecure: bool
) -> None:
    urls = {
        "api_url": "https://api.chekt.com",
        "token_url": "https://auth.example.com/oauth/token",
        field: url,
    }
    credentials = ChektCredentials(
        token_url=urls["token_url"], client_id="c", signing_key=SigningKey.parse("secret-secret")
    )
    with pytest.raises(ChektUrlError) as caught:
        ChektClient(session, api_url=urls["api_url"], credentials=credentials)
    assert caught.value.field == field
    assert caught.value.insecure is insecure


async def test_loopback_http_and_repr(session: aiohttp.ClientSession) -> None:
    credentials = ChektCredentials(
        token_url="http://localhost:1/oauth/token",
        client_id="c",
        signing_key=SigningKey.parse("secret-secret"),
        api_key="hidden-api-key",
    )
    client = ChektClient(session, api_url="http://[::1]:8080/base/", credentials=credentials)
    assert "secret" not in repr(client) + repr(credentials) + repr(client.tokens)
    assert "hidden-api-key" not in repr(credentials)
    assert "/base/partner/v1/events" in repr(client)


async def test_upload_target_errors_hide_the_url(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session)
    target = UploadTarget(
        MediaKind.SNAPSHOT,
        upload_put_url=f"{sim.base_url}/uploads/x/snapshot/0?signature=top-secret",
        callback_put_url=f"{sim.base_url}/partner/v1/events/x/uploads/callback?access_token=top-secret",
    )
    await sim.stop()
    for request in (client.upload(target, JPEG), client.confirm_upload(target)):
        with pytest.raises(ChektConnectionError) as caught:
            await request
        assert "top-secret" not in str(caught.value)
    await sim.start()
