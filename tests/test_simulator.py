"""The CHeKT cloud simulator, proven with plain aiohttp requests over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
import contextlib
import hashlib
import hmac
import json
from pathlib import Path
import re
import signal
import subprocess
import sys
from typing import Any
import uuid
import warnings

import aiohttp
import jwt
import pytest

from tests.simulator import (
    ChektSimulator,
    Endpoint,
    EventOutcome,
    Fault,
    FaultKind,
    MediaKind,
    SigningAlgorithm,
)
from tests.simulator.__main__ import build_simulator, describe, main, parse_args, serve
from tests.simulator.app import _url_host
from tests.simulator_fixtures import (
    API_AUDIENCE,
    API_CLIENT,
    API_KEY,
    ES_CLIENT,
    EVENTS_PATH,
    HS_CLIENT,
    HS_SECRET,
    JPEG_BYTES,
    MP4_BYTES,
    RS_CLIENT,
    RS_KEY_ID,
    assertion_for,
    bearer,
    claims_for,
    ec_keys,
    event_body,
    fetch_token,
    register_test_clients,
    rsa_keys,
    sign,
    token_form,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """The simulator needs no Home Assistant: override the package-wide fixture that starts one per test."""


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[ChektSimulator]:
    """A running simulator with the test clients registered."""
    simulator = ChektSimulator()
    register_test_clients(simulator)
    async with simulator:
        yield simulator


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def token(sim: ChektSimulator, http: aiohttp.ClientSession) -> str:
    """An access token of the HS256 client."""
    return await fetch_token(http, sim)


async def post_event(
    http: aiohttp.ClientSession, sim: ChektSimulator, token: str, body: Any, **headers: str
) -> tuple[int, Any]:
    """POST an event; the reply's status and JSON body."""
    async with http.post(sim.base_url + EVENTS_PATH, json=body, headers=bearer(token, **headers)) as reply:
        return reply.status, await reply.json()


async def accepted_event(http: aiohttp.ClientSession, sim: ChektSimulator, token: str, **fields: Any) -> dict[str, Any]:
    """POST a valid event and return the 201 reply."""
    status, reply = await post_event(http, sim, token, event_body(**fields))
    assert status == 201, reply
    return reply  # type: ignore[no-any-return]


async def put(http: aiohttp.ClientSession, url: str, data: bytes = b"", **headers: str) -> aiohttp.ClientResponse:
    """PUT and read the whole reply."""
    async with http.put(url, data=data, headers=headers) as reply:
        await reply.read()
        return reply


# -- token endpoint --


@pytest.mark.parametrize("client_id", [HS_CLIENT, RS_CLIENT, ES_CLIENT])
@pytest.mark.parametrize("audience", ["issuer", "token_url"])
async def test_token_accepts_valid_assertions(
    sim: ChektSimulator, http: aiohttp.ClientSession, client_id: str, audience: str
) -> None:
    assertion = assertion_for(sim, client_id, aud=getattr(sim, audience))
    async with http.post(sim.token_url, data=token_form(assertion)) as reply:
        assert reply.status == 200
        assert reply.headers["Cache-Control"] == "no-store"
        payload = await reply.json()
    assert payload.keys() == {"access_token", "token_type", "expires_in"}
    assert payload["token_type"] == "Bearer"
    assert payload["expires_in"] == 3600
    claims = jwt.decode(payload["access_token"], options={"verify_signature": False})
    assert claims["sub"] == client_id
    assert claims["exp"] - claims["iat"] == 3600
    record = sim.token_requests[-1]
    assert (record.status, record.client_id, record.error) == (200, client_id, None)
    assert record.alg == SigningAlgorithm(jwt.get_unverified_header(assertion)["alg"])


def _hs(claims: dict[str, Any], key: str = HS_SECRET, **header: Any) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=header or None)


def _raw_jwt(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT built by hand, for the forgeries PyJWT rightly refuses to produce."""

    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{encode(json.dumps(header).encode())}.{encode(json.dumps(claims).encode())}"
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest() if hmac_key else b""
    return f"{signing_input}.{encode(signature)}"


# Each case builds a token form from the simulator; the reply must be this OAuth error naming the problem.
TOKEN_REFUSALS: dict[str, tuple[Callable[[ChektSimulator], dict[str, str]], int, str, str]] = {
    "bad signature": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer), key="another-secret-of-at-least-32-bytes!")),
        401,
        "invalid_client",
        "signature",
    ),
    "unknown client": (
        lambda s: token_form(_hs(claims_for("nobody", s.issuer))),
        401,
        "invalid_client",
        "unknown client",
    ),
    "missing iss": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, iss=None))),
        401,
        "invalid_client",
        "iss: missing",
    ),
    "sub differs from iss": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, sub=RS_CLIENT))),
        401,
        "invalid_client",
        "sub: must equal iss",
    ),
    "iss of another client": (
        lambda s: token_form(_hs(claims_for(RS_CLIENT, s.issuer))),
        401,
        "invalid_client",
        "alg: HS256 does not match",
    ),
    "wrong aud": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, "https://elsewhere.example/"))),
        401,
        "invalid_client",
        "aud:",
    ),
    "issuer without trailing slash": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.base_url))),
        401,
        "invalid_client",
        "aud:",
    ),
    "expired": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, lifetime=-60))),
        401,
        "invalid_client",
        "exp: the assertion has expired",
    ),
    "exp too far ahead": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, lifetime=3600))),
        401,
        "invalid_client",
        "exp: more than 10 minutes ahead",
    ),
    "missing exp": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, exp=None))),
        401,
        "invalid_client",
        "exp: missing",
    ),
    "missing iat": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, iat=None))),
        401,
        "invalid_client",
        "iat: missing",
    ),
    "iat in the future": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, iat=int(9e9)))),
        401,
        "invalid_client",
        "iat: issued in the future",
    ),
    "iat not a number": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, iat="soon"))),
        401,
        "invalid_client",
        "invalid assertion",
    ),
    "missing jti": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, jti=None))),
        401,
        "invalid_client",
        "jti: missing",
    ),
    "empty jti": (
        lambda s: token_form(_hs(claims_for(HS_CLIENT, s.issuer, jti=""))),
        401,
        "invalid_client",
        "jti: must be a non-empty string",
    ),
    "wrong kid": (
        lambda s: token_form(
            sign(claims_for(RS_CLIENT, s.issuer), algorithm="RS256", key=rsa_keys().private_pem, kid="old-key")
        ),
        401,
        "invalid_client",
        "kid:",
    ),
    "missing kid": (
        lambda s: token_form(sign(claims_for(RS_CLIENT, s.issuer), algorithm="RS256", key=rsa_keys().private_pem)),
        401,
        "invalid_client",
        "kid:",
    ),
    "ES256 for an RSA client": (
        lambda s: token_form(
            sign(claims_for(RS_CLIENT, s.issuer), algorithm="ES256", key=ec_keys().private_pem, kid=RS_KEY_ID)
        ),
        401,
        "invalid_client",
        "alg: ES256 does not match",
    ),
    "RS256 for a secret client": (
        lambda s: token_form(sign(claims_for(HS_CLIENT, s.issuer), algorithm="RS256", key=rsa_keys().private_pem)),
        401,
        "invalid_client",
        "alg: RS256 does not match",
    ),
    "HS256 keyed with the public key (alg confusion)": (
        lambda s: token_form(
            _raw_jwt({"alg": "HS256"}, claims_for(ES_CLIENT, s.issuer), ec_keys().public_pem.encode())
        ),
        401,
        "invalid_client",
        "alg: HS256 does not match",
    ),
    "alg none": (
        lambda s: token_form(_raw_jwt({"alg": "none"}, claims_for(HS_CLIENT, s.issuer), None)),
        401,
        "invalid_client",
        "alg: unsigned",
    ),
    "client_id field of another client": (
        lambda s: token_form(assertion_for(s), client_id=RS_CLIENT),
        401,
        "invalid_client",
        "client_id:",
    ),
    "wrong audience field": (
        lambda s: token_form(assertion_for(s, API_CLIENT), audience="https://other.example/api"),
        403,
        "access_denied",
        "audience: not the API audience",
    ),
    "missing audience field": (
        lambda s: token_form(assertion_for(s, API_CLIENT)),
        403,
        "access_denied",
        "audience: missing",
    ),
    "wrong grant type": (
        lambda s: token_form(assertion_for(s), grant_type="password"),
        400,
        "unsupported_grant_type",
        "grant_type:",
    ),
    "missing grant type": (
        lambda s: token_form(assertion_for(s), grant_type=None),
        400,
        "invalid_request",
        "grant_type: missing",
    ),
    "wrong assertion type": (
        lambda s: token_form(assertion_for(s), client_assertion_type="urn:example:saml"),
        400,
        "invalid_request",
        "client_assertion_type:",
    ),
    "missing assertion": (
        lambda s: token_form("", client_assertion=None),
        400,
        "invalid_request",
        "client_assertion: missing",
    ),
    "assertion not a JWT": (
        lambda s: token_form("not-a-jwt"),
        400,
        "invalid_request",
        "client_assertion: not a JWT",
    ),
}


@pytest.mark.parametrize("case", TOKEN_REFUSALS.keys())
async def test_token_refuses(sim: ChektSimulator, http: aiohttp.ClientSession, case: str) -> None:
    build_form, status, error, fragment = TOKEN_REFUSALS[case]
    async with http.post(sim.token_url, data=build_form(sim)) as reply:
        assert reply.status == status
        payload = await reply.json()
    assert payload.keys() == {"error", "error_description"}
    assert payload["error"] == error
    assert fragment in payload["error_description"]
    assert sim.token_requests[-1].status == status
    assert sim.token_requests[-1].error == error
    assert [record.endpoint for record in sim.malformed] == ([Endpoint.TOKEN] if status == 400 else [])


async def test_token_refuses_replayed_assertion(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    form = token_form(assertion_for(sim, RS_CLIENT))
    async with http.post(sim.token_url, data=form) as first:
        assert first.status == 200
    async with http.post(sim.token_url, data=form) as second:
        assert second.status == 401
        assert second.headers["WWW-Authenticate"].startswith("Basic")
        assert (await second.json())["error_description"] == "jti: this assertion was used before"


async def test_token_refuses_a_json_body(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    async with http.post(sim.token_url, json=token_form(assertion_for(sim))) as reply:
        assert reply.status == 400
        assert (await reply.json())["error_description"].startswith("Content-Type: expected application/x-www")


async def test_token_for_audience_client(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    token = await fetch_token(http, sim, API_CLIENT)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == API_AUDIENCE


async def test_short_secret_is_accepted_without_warning(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    sim.add_client("demo", secret="demo-secret")
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT warns when signing with it ...
        assertion = _hs(claims_for("demo", sim.issuer), key="demo-secret")
    with warnings.catch_warnings():
        warnings.simplefilter("error", jwt.InsecureKeyLengthWarning)  # ... the simulator must not when verifying
        async with http.post(sim.token_url, data=token_form(assertion)) as reply:
            assert reply.status == 200


# -- event endpoint: success --


def _assert_upload_target(target: dict[str, Any], sim: ChektSimulator, kind: MediaKind, seq: int | None) -> None:
    expected_keys = {"upload_put_url", "callback_put_url"} | ({"seq"} if seq is not None else set())
    assert target.keys() == expected_keys
    assert target.get("seq") == seq
    assert re.fullmatch(
        rf"{re.escape(sim.base_url)}/uploads/\d+/{kind}/{seq or 0}\?expires=\d+&signature=[0-9a-f]{{64}}",
        target["upload_put_url"],
    )
    seq_query = f"seq={seq}&" if seq is not None else ""
    assert re.fullmatch(
        rf"{re.escape(sim.base_url)}/partner/v1/events/\d+/uploads/callback\?{seq_query}type={kind}"
        r"&access_token=[0-9a-f]{64}",
        target["callback_put_url"],
    )


async def test_event_accepted_with_the_spec_reply(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    body = event_body(upload_snapshot_count=2, upload_short_mp4=True, upload_event_mp4=False)
    status, reply = await post_event(http, sim, token, body)
    assert status == 201
    assert list(reply) == ["event_id", "response_id", "uploads", "status", "reason"]
    assert reply["event_id"] == body["event_id"]
    assert uuid.UUID(reply["response_id"]).version == 4
    assert (reply["status"], reply["reason"]) == ("accepted", None)
    uploads = reply["uploads"]
    assert uploads.keys() == {"snapshots", "short_mp4", "event_mp4"}
    for seq, target in enumerate(uploads["snapshots"]):
        _assert_upload_target(target, sim, MediaKind.SNAPSHOT, seq)
    assert len(uploads["snapshots"]) == 2
    _assert_upload_target(uploads["short_mp4"], sim, MediaKind.SHORT_MP4, None)
    assert uploads["event_mp4"] is None
    record = sim.accepted[body["event_id"]]
    assert (record.status, record.outcome, record.client_id) == (201, EventOutcome.ACCEPTED, HS_CLIENT)
    assert record.body == body
    assert record.response == reply
    assert record.headers["authorization"] == f"Bearer {token}"  # headers are case-insensitive
    assert sim.duplicate_accepts == 0
    assert sim.malformed == []


async def test_event_without_media_or_recorder(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    body = event_body(remove=["recorder_id"], event_type="arming", event_status="inactive", upload_snapshot_count=0) | {
        "upload_event_mp4": False,
        "event_time": "2025-11-20T02:46:25+01:00",
    }
    status, reply = await post_event(http, sim, token, body)
    assert status == 201
    assert reply["uploads"] == {"snapshots": [], "short_mp4": None, "event_mp4": None}


async def test_event_accepts_the_api_key_client(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    token = await fetch_token(http, sim, API_CLIENT)
    status, _ = await post_event(http, sim, token, event_body(), **{"X-API-KEY": API_KEY})
    assert status == 201


async def test_event_discarded_for_disarmed_location(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.disarmed_locations.add("HOME")
    body = event_body(location_id="HOME", upload_snapshot_count=3, upload_short_mp4=True)
    status, reply = await post_event(http, sim, token, body)
    assert status == 201
    assert reply["status"] == "discarded"
    assert reply["reason"] == "Event discarded: device is disarmed"
    assert reply["uploads"] == {"snapshots": [], "short_mp4": None, "event_mp4": None}
    assert sim.accepted == {}
    assert sim.events[-1].outcome is EventOutcome.DISCARDED


# -- event endpoint: refusals --

BODY_REFUSALS: dict[str, tuple[Any, str]] = {
    "missing field": (event_body(remove=["camera_id"]), "camera_id: missing required field"),
    "missing payload": (event_body(remove=["payload"]), "payload: missing required field"),
    "string as integer": (event_body(location_id=5), "location_id: expected a string, got an integer"),
    "bool as int": (
        event_body(upload_snapshot_count=True),
        "upload_snapshot_count: expected an integer, got a boolean",
    ),
    "int as bool": (event_body(upload_short_mp4=1), "upload_short_mp4: expected a boolean, got an integer"),
    "string as bool": (
        event_body(should_signal_to_monitoring_center="true"),
        "should_signal_to_monitoring_center: expected a boolean, got a string",
    ),
    "float as int": (
        event_body(upload_snapshot_count=1.0),
        "upload_snapshot_count: expected an integer, got a number",
    ),
    "array as object": (event_body(payload=[]), "payload: expected an object, got an array"),
    "null as object": (event_body(payload=None), "payload: expected an object, got null"),
    "null recorder": (event_body(recorder_id=None), "recorder_id: expected a string, got null"),
    "empty recorder": (event_body(recorder_id=""), "recorder_id: must not be empty"),
    "empty event id": (event_body(event_id=""), "event_id: must not be empty"),
    "empty location": (event_body(location_id=""), "location_id: must not be empty"),
    "bad time": (event_body(event_time="yesterday"), "event_time: not an ISO 8601 time: 'yesterday'"),
    "naive time": (
        event_body(sent_at="2025-11-20T01:46:28.534"),
        "sent_at: ISO 8601 time without a timezone: '2025-11-20T01:46:28.534'",
    ),
    "date only": (event_body(event_time="2025-11-20"), "event_time: ISO 8601 time without a timezone"),
    "unknown event type": (event_body(event_type="netloss"), "event_type: unknown event type 'netloss'"),
    "unknown event status": (event_body(event_status="open"), "event_status: unknown event status 'open'"),
    "unknown field": (event_body(priority="high"), "priority: unknown field"),
    "bad version": (event_body(version="2.0"), "version: unsupported version '2.0'"),
    "numeric version": (event_body(version=1.0), "version: expected a string, got a number"),
    "too many snapshots": (
        event_body(upload_snapshot_count=11),
        "upload_snapshot_count: must be within 0..10",
    ),
    "negative snapshots": (
        event_body(upload_snapshot_count=-1),
        "upload_snapshot_count: must be within 0..10",
    ),
    "array body": ([event_body()], "body: expected a JSON object, got an array"),
    "string body": ("event", "body: expected a JSON object, got a string"),
}


@pytest.mark.parametrize("case", BODY_REFUSALS.keys())
async def test_event_refuses_malformed_body(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str, case: str
) -> None:
    body, message = BODY_REFUSALS[case]
    status, reply = await post_event(http, sim, token, body)
    assert status == 400
    assert reply["error"] == "Bad Request"
    assert reply["message"].startswith(message), reply["message"]
    assert sim.malformed[-1].endpoint is Endpoint.EVENTS
    assert sim.malformed[-1].message == reply["message"]
    assert sim.events[-1].outcome is EventOutcome.REJECTED
    assert sim.accepted == {}


RAW_REFUSALS: dict[str, tuple[bytes, str, str]] = {
    "not JSON": (b"{not json", "application/json", "body: not valid JSON"),
    "NaN": (b'{"upload_snapshot_count": NaN}', "application/json", "body: NaN is not valid JSON"),
    "repeated key": (
        b'{"event_id": "1", "event_id": "2"}',
        "application/json",
        "event_id: appears more than once",
    ),
    "not UTF-8": (b'{"event_id": "\xff"}', "application/json", "body: not UTF-8"),
    "form body": (
        b"event_id=1",
        "application/x-www-form-urlencoded",
        "Content-Type: expected application/json",
    ),
}


@pytest.mark.parametrize("case", RAW_REFUSALS.keys())
async def test_event_refuses_unparseable_body(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str, case: str
) -> None:
    data, content_type, message = RAW_REFUSALS[case]
    headers = bearer(token, **{"Content-Type": content_type})
    async with http.post(sim.base_url + EVENTS_PATH, data=data, headers=headers) as reply:
        assert reply.status == 400
        assert (await reply.json())["message"].startswith(message)
    assert sim.events[-1].body is None


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic aGk6aG8=",
        "Bearer ",
        "Bearer not-a-token",
        "Bearer " + jwt.encode({"sub": HS_CLIENT}, "x" * 32),
    ],
)
async def test_event_refuses_missing_or_bad_token(
    sim: ChektSimulator, http: aiohttp.ClientSession, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with http.post(sim.base_url + EVENTS_PATH, json=event_body(), headers=headers) as reply:
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert await reply.json() == {"error": "Unauthorized", "message": "Invalid token or credentials"}
    assert sim.events[-1].outcome is EventOutcome.REJECTED
    assert sim.malformed == []


async def test_revoked_token_is_refused(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    assert (await post_event(http, sim, token, event_body()))[0] == 201
    sim.revoke_tokens()
    assert (await post_event(http, sim, token, event_body()))[0] == 401
    assert (await post_event(http, sim, await fetch_token(http, sim), event_body()))[0] == 201


async def test_token_of_a_removed_client_is_refused(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    del sim.clients[HS_CLIENT]
    assert (await post_event(http, sim, token, event_body()))[0] == 401


async def test_expired_token_is_refused(socket_enabled: None, http: aiohttp.ClientSession) -> None:
    async with ChektSimulator(token_ttl=0) as short_lived:
        register_test_clients(short_lived)
        token = await fetch_token(http, short_lived)
        status, reply = await post_event(http, short_lived, token, event_body())
    assert (status, reply["error"]) == (401, "Unauthorized")


@pytest.mark.parametrize("api_key", [None, "wrong-key"])
async def test_event_refuses_missing_or_wrong_api_key(
    sim: ChektSimulator, http: aiohttp.ClientSession, api_key: str | None
) -> None:
    token = await fetch_token(http, sim, API_CLIENT)
    headers = {"X-API-KEY": api_key} if api_key else {}
    status, reply = await post_event(http, sim, token, event_body(), **headers)
    assert status == 403
    assert reply == {"error": "Forbidden", "message": "X-API-KEY: missing or not the API key of this client"}


# -- idempotency --


async def test_same_key_same_body_replays_the_first_reply(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    body = event_body()
    first = await post_event(http, sim, token, body, **{"Idempotency-Key": "k1"})
    retry = await post_event(http, sim, token, body | {"sent_at": "2025-11-20T01:47:00Z"}, **{"Idempotency-Key": "k1"})
    assert retry == first
    assert first[0] == 201
    assert sim.duplicate_accepts == 0
    assert [record.outcome for record in sim.events] == [EventOutcome.ACCEPTED, EventOutcome.REPLAYED]
    assert sim.accepted[body["event_id"]] is sim.events[0]


async def test_same_key_other_body_conflicts(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    body = event_body()
    await post_event(http, sim, token, body, **{"Idempotency-Key": "k2"})
    status, reply = await post_event(http, sim, token, body | {"event_status": "inactive"}, **{"Idempotency-Key": "k2"})
    assert status == 409
    assert reply == {
        "error": "Conflict",
        "message": "Idempotency-Key: already used with a different request body",
    }
    assert (sim.malformed[-1].status, sim.malformed[-1].endpoint) == (409, Endpoint.EVENTS)


async def test_empty_idempotency_key_is_refused(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    status, reply = await post_event(http, sim, token, event_body(), **{"Idempotency-Key": ""})
    assert (status, reply["message"]) == (400, "Idempotency-Key: must not be empty")


async def test_same_event_twice_without_key_is_a_duplicate(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    body = event_body()
    await accepted_event(http, sim, token, **body)
    await accepted_event(http, sim, token, **body)
    assert sim.duplicate_accepts == 1
    assert list(sim.accepted) == [body["event_id"]]
    assert sim.accepted[body["event_id"]] is sim.events[0]


async def test_same_event_under_two_keys_is_a_duplicate(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    body = event_body()
    await post_event(http, sim, token, body, **{"Idempotency-Key": "a"})
    await post_event(http, sim, token, body, **{"Idempotency-Key": "b"})
    assert sim.duplicate_accepts == 1


async def test_discarded_reply_is_replayed_too(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.disarmed_locations.add("HOME")
    body = event_body(location_id="HOME")
    first = await post_event(http, sim, token, body, **{"Idempotency-Key": "d"})
    sim.disarmed_locations.clear()
    assert await post_event(http, sim, token, body, **{"Idempotency-Key": "d"}) == first


# -- uploads and callbacks --


async def test_upload_then_callback(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    reply = await accepted_event(http, sim, token, upload_snapshot_count=1, upload_short_mp4=True)
    event_id = reply["event_id"]
    snapshot, clip = reply["uploads"]["snapshots"][0], reply["uploads"]["short_mp4"]

    uploaded = await put(http, snapshot["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})
    assert uploaded.status == 200
    assert re.fullmatch(r'"[0-9a-f]{32}"', uploaded.headers["ETag"])
    assert (await put(http, snapshot["callback_put_url"])).status == 200
    assert (await put(http, clip["upload_put_url"], MP4_BYTES, **{"Content-Type": "video/mp4"})).status == 200
    assert (await put(http, clip["callback_put_url"], b"{}", **{"Content-Type": "application/json"})).status == 200

    assert [(u.event_id, u.kind, u.seq, u.content_type, u.valid_media) for u in sim.uploads] == [
        (event_id, MediaKind.SNAPSHOT, 0, "image/jpeg", True),
        (event_id, MediaKind.SHORT_MP4, 0, "video/mp4", True),
    ]
    assert sim.uploads[0].data == JPEG_BYTES
    assert sim.uploads[0].size == len(JPEG_BYTES)
    assert [(c.kind, c.seq, c.upload_preceded, c.status) for c in sim.callbacks] == [
        (MediaKind.SNAPSHOT, 0, True, 200),
        (MediaKind.SHORT_MP4, None, True, 200),
    ]


async def test_listeners_hear_each_answered_request(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    heard: list[tuple[str, int | None]] = []
    remove = sim.add_listener(lambda record: heard.append((type(record).__name__, getattr(record, "status", None))))
    reply = await accepted_event(http, sim, token, upload_snapshot_count=1)
    snapshot = reply["uploads"]["snapshots"][0]
    assert (await put(http, snapshot["callback_put_url"])).status == 409
    assert (await put(http, snapshot["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})).status == 200
    assert (await put(http, snapshot["callback_put_url"])).status == 200
    assert (await post_event(http, sim, "not-a-token", event_body()))[0] == 401
    remove()
    await accepted_event(http, sim, token)
    assert heard == [
        ("EventRecord", 201),
        ("CallbackRecord", 409),
        ("UploadRecord", None),
        ("CallbackRecord", 200),
        ("EventRecord", 401),
    ]


async def test_upload_records_media_that_is_not_real(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    reply = await accepted_event(http, sim, token, upload_snapshot_count=1, upload_event_mp4=True)
    await put(http, reply["uploads"]["snapshots"][0]["upload_put_url"], b"GIF89a", **{"Content-Type": "image/jpeg"})
    await put(http, reply["uploads"]["event_mp4"]["upload_put_url"], b"\x00" * 16, **{"Content-Type": "video/mp4"})
    assert [upload.valid_media for upload in sim.uploads] == [False, False]


async def test_callback_before_upload_conflicts(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    reply = await accepted_event(http, sim, token)
    async with http.put(reply["uploads"]["snapshots"][0]["callback_put_url"]) as callback:
        assert callback.status == 409
        assert (await callback.json())["error"] == "Conflict"
    assert [(c.upload_preceded, c.status) for c in sim.callbacks] == [(False, 409)]
    assert sim.malformed[-1].endpoint is Endpoint.CALLBACK


def _tamper(url: str, name: str, value: str) -> str:
    return re.sub(rf"{name}=[^&]*", f"{name}={value}", url)


async def test_upload_refuses_tampered_signature(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    url = (await accepted_event(http, sim, token))["uploads"]["snapshots"][0]["upload_put_url"]
    for bad_url in (
        _tamper(url, "signature", "0" * 64),
        _tamper(url, "expires", "9999999999"),
        url.split("?")[0],
    ):
        async with http.put(bad_url, data=JPEG_BYTES, headers={"Content-Type": "image/jpeg"}) as reply:
            assert reply.status == 403
            assert "<Code>SignatureDoesNotMatch</Code>" in await reply.text()
    # The URL of one slot does not open another.
    async with http.put(url.replace("/snapshot/0?", "/snapshot/1?"), data=JPEG_BYTES) as reply:
        assert reply.status == 403
    assert sim.uploads == []


async def test_upload_refuses_expired_url(socket_enabled: None, http: aiohttp.ClientSession) -> None:
    async with ChektSimulator(upload_ttl=0) as sim:
        register_test_clients(sim)
        reply = await accepted_event(http, sim, await fetch_token(http, sim))
        url = reply["uploads"]["snapshots"][0]["upload_put_url"]
        async with http.put(url, data=JPEG_BYTES, headers={"Content-Type": "image/jpeg"}) as upload:
            assert upload.status == 403
            assert "Request has expired" in await upload.text()


async def test_upload_refuses_authorization_header(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    url = (await accepted_event(http, sim, token))["uploads"]["snapshots"][0]["upload_put_url"]
    reply = await put(http, url, JPEG_BYTES, **bearer(token, **{"Content-Type": "image/jpeg"}))
    assert reply.status == 400
    assert sim.malformed[-1].endpoint is Endpoint.UPLOAD
    assert sim.malformed[-1].message.startswith("Authorization: pre-signed URLs must not carry")
    assert sim.uploads == []


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [
        ("snapshots", "image/png"),
        ("snapshots", "video/mp4"),
        ("event_mp4", "image/jpeg"),
        ("snapshots", None),
    ],
)
async def test_upload_refuses_wrong_content_type(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str, kind: str, content_type: str | None
) -> None:
    uploads = (await accepted_event(http, sim, token))["uploads"]
    url = uploads[kind][0]["upload_put_url"] if kind == "snapshots" else uploads[kind]["upload_put_url"]
    headers = {"Content-Type": content_type} if content_type else {}
    async with http.put(url, data=JPEG_BYTES, headers=headers) as reply:
        assert reply.status == 400
        assert "<Code>InvalidArgument</Code>" in await reply.text()
    assert sim.malformed[-1].message.startswith("Content-Type: expected")


@pytest.mark.parametrize("path", ["/uploads/1/gif/0", "/uploads/1/snapshot/first"])
async def test_upload_to_unknown_slot(sim: ChektSimulator, http: aiohttp.ClientSession, path: str) -> None:
    reply = await put(http, sim.base_url + path + "?expires=1&signature=x", JPEG_BYTES)
    assert reply.status == 404


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("seq=0&type=gif", 400, "type: expected one of snapshot, short_mp4, event_mp4, got 'gif'"),
        ("seq=0", 400, "type: expected one of"),
        ("type=snapshot", 400, "seq: expected a snapshot number, got None"),
        ("seq=-1&type=snapshot", 400, "seq: expected a snapshot number, got '-1'"),
        ("seq=0&type=event_mp4", 400, "seq: event_mp4 callbacks carry no seq"),
        ("seq=0&type=snapshot&access_token=forged", 401, "Invalid token or credentials"),
        ("seq=0&type=snapshot", 401, "Invalid token or credentials"),
    ],
)
async def test_callback_refusals(
    sim: ChektSimulator, http: aiohttp.ClientSession, query: str, status: int, message: str
) -> None:
    async with http.put(f"{sim.base_url}{EVENTS_PATH}/123/uploads/callback?{query}") as reply:
        assert reply.status == status
        assert (await reply.json())["message"].startswith(message)
    assert sim.callbacks == []


async def test_callback_token_is_bound_to_its_slot(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    reply = await accepted_event(http, sim, token, upload_snapshot_count=2)
    url = reply["uploads"]["snapshots"][0]["callback_put_url"]
    assert (await put(http, url.replace("seq=0", "seq=1"))).status == 401


async def test_media_is_served_back(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    reply = await accepted_event(http, sim, token)
    await put(http, reply["uploads"]["snapshots"][0]["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})
    async with http.get(f"{sim.base_url}/media/{reply['event_id']}/snapshot/0") as media:
        assert (media.status, media.content_type, await media.read()) == (200, "image/jpeg", JPEG_BYTES)
    for missing in ("snapshot/1", "event_mp4/0", "gif/0", "snapshot/x"):
        async with http.get(f"{sim.base_url}/media/{reply['event_id']}/{missing}") as media:
            assert media.status == 404


# -- faults --


async def test_status_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault(Endpoint.EVENTS, FaultKind.STATUS, status=502))
    body = event_body()
    status, reply = await post_event(http, sim, token, body)
    assert (status, reply) == (502, {"error": "Bad Gateway", "message": "injected status fault"})
    record = sim.events[-1]
    assert (record.outcome, record.status, record.fault, record.event_id) == (
        EventOutcome.FAULTED,
        502,
        FaultKind.STATUS,
        body["event_id"],
    )
    assert sim.accepted == {}
    assert (await post_event(http, sim, token, body))[0] == 201


async def test_rate_limit_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "rate_limit", retry_after=7))
    async with http.post(sim.base_url + EVENTS_PATH, json=event_body(), headers=bearer(token)) as reply:
        assert reply.status == 429
        assert reply.headers["Retry-After"] == "7"
        assert (await reply.json())["error"] == "Too Many Requests"


async def test_unauthorized_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "unauthorized"))
    assert (await post_event(http, sim, token, event_body()))[0] == 401
    assert (await post_event(http, sim, token, event_body()))[0] == 201


async def test_drop_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "drop"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_event(http, sim, token, event_body())
    assert (sim.events[-1].status, sim.events[-1].outcome) == (0, EventOutcome.FAULTED)
    assert sim.accepted == {}
    assert (await post_event(http, sim, token, event_body()))[0] == 201


async def test_drop_fault_with_unparseable_body(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "drop", count=2))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_event(http, sim, token, [1, 2])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(sim.base_url + EVENTS_PATH, data=b"{", headers=bearer(token))
    assert [(record.body, record.event_id) for record in sim.events] == [([1, 2], None), (None, None)]


async def test_lose_reply_fault_then_idempotent_retry(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.inject(Fault("events", "lose_reply"))
    body = event_body()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_event(http, sim, token, body, **{"Idempotency-Key": "lost"})
    assert body["event_id"] in sim.accepted
    assert sim.accepted[body["event_id"]].fault is FaultKind.LOSE_REPLY
    status, reply = await post_event(http, sim, token, body, **{"Idempotency-Key": "lost"})
    assert status == 201
    assert reply == sim.accepted[body["event_id"]].response
    assert sim.duplicate_accepts == 0


async def test_lose_reply_then_retry_without_key_is_a_duplicate(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.inject(Fault("events", "lose_reply"))
    body = event_body()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_event(http, sim, token, body)
    await accepted_event(http, sim, token, **body)
    assert sim.duplicate_accepts == 1


async def test_delay_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "delay", seconds=0.01))
    assert (await post_event(http, sim, token, event_body()))[0] == 201
    assert sim.events[-1].fault is FaultKind.DELAY
    assert [fault.kind for fault in sim.faults] == [FaultKind.DELAY]


async def test_malformed_reply_fault(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "malformed_reply"))
    sim.inject(Fault("events", "malformed_reply", body='{"status": "accepted"}'))
    body = event_body()
    async with http.post(sim.base_url + EVENTS_PATH, json=body, headers=bearer(token)) as reply:
        assert reply.status == 201
        with pytest.raises(json.JSONDecodeError):
            json.loads(await reply.text())
    async with http.post(sim.base_url + EVENTS_PATH, json=event_body(), headers=bearer(token)) as reply:
        assert await reply.json() == {"status": "accepted"}
    assert body["event_id"] in sim.accepted


async def test_queued_faults_apply_in_order_and_count(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.inject(Fault("events", "status", status=500, count=2))
    sim.inject(Fault("upload", "status", status=500))
    sim.inject(Fault("events", "status", status=503))
    assert sim.pending_faults == 4
    statuses = [(await post_event(http, sim, token, event_body()))[0] for _ in range(4)]
    assert statuses == [500, 500, 503, 201]
    assert sim.pending_faults == 1


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("status", 503, "server_error"),
        ("rate_limit", 429, "too_many_requests"),
        ("unauthorized", 401, "invalid_client"),
    ],
)
async def test_token_faults(
    sim: ChektSimulator, http: aiohttp.ClientSession, kind: str, status: int, error: str
) -> None:
    sim.inject(Fault("token", kind))
    async with http.post(sim.token_url, data=token_form(assertion_for(sim))) as reply:
        assert reply.status == status
        assert (await reply.json())["error"] == error
    assert (sim.token_requests[-1].status, sim.token_requests[-1].fault) == (status, FaultKind(kind))
    await fetch_token(http, sim)


async def test_token_drop_and_malformed_reply(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    sim.inject(Fault("token", "drop"))
    sim.inject(Fault("token", "malformed_reply", body="<html>oops</html>"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(sim.token_url, data=token_form(assertion_for(sim)))
    async with http.post(sim.token_url, data=token_form(assertion_for(sim))) as reply:
        assert (reply.status, await reply.text()) == (200, "<html>oops</html>")
    assert [record.status for record in sim.token_requests] == [0, 200]


async def test_upload_and_callback_faults(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    reply = await accepted_event(http, sim, token)
    target = reply["uploads"]["snapshots"][0]
    # aiohttp retries an idempotent PUT once by itself when the connection drops, so one drop goes unnoticed.
    sim.inject(Fault("upload", "drop", count=2))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await put(http, target["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})
    assert sim.uploads == []
    sim.inject(Fault("upload", "lose_reply"))
    sim.inject(Fault("callback", "status", status=500))
    uploaded = await put(http, target["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})
    assert uploaded.status == 200  # the lost reply was retried by aiohttp, and the upload stored twice
    assert [upload.fault for upload in sim.uploads] == [FaultKind.LOSE_REPLY, None]
    assert (await put(http, target["callback_put_url"])).status == 500
    assert (await put(http, target["callback_put_url"])).status == 200
    assert [(f.endpoint, f.kind) for f in sim.faults] == [
        (Endpoint.UPLOAD, FaultKind.DROP),
        (Endpoint.UPLOAD, FaultKind.DROP),
        (Endpoint.UPLOAD, FaultKind.LOSE_REPLY),
        (Endpoint.CALLBACK, FaultKind.STATUS),
    ]


async def _statuses_under_random_faults(http: aiohttp.ClientSession, sim: ChektSimulator, token: str) -> list[int]:
    return [(await post_event(http, sim, token, event_body()))[0] for _ in range(20)]


async def test_random_faults_are_reproducible(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    faults = [Fault("events", "status", status=500), Fault("events", "rate_limit"), Fault("upload", "drop")]
    sim.set_random_faults(rate=0.5, faults=faults, seed=7)
    first = await _statuses_under_random_faults(http, sim, token)
    sim.set_random_faults(rate=0.5, faults=faults, seed=7)
    second = await _statuses_under_random_faults(http, sim, token)
    assert first == second
    assert {500, 429, 201} == set(first)
    sim.set_random_faults(rate=0, faults=[], seed=0)
    assert set(await _statuses_under_random_faults(http, sim, token)) == {201}


async def test_random_faults_leave_other_endpoints_alone(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.set_random_faults(rate=1.0, faults=[Fault("upload", "status", status=503)], seed=1)
    event = await accepted_event(http, sim, token)
    target = event["uploads"]["snapshots"][0]
    async with http.put(target["upload_put_url"], data=JPEG_BYTES, headers={"Content-Type": "image/jpeg"}) as reply:
        assert reply.status == 503
        assert "<Code>ServiceUnavailable</Code>" in await reply.text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"count": 0}, "at least one request"),
        ({"status": 42}, "not an HTTP status"),
        ({"seconds": -1}, "cannot be negative"),
    ],
)
def test_fault_refuses_impossible_values(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault("events", "status", **arguments)


def test_fault_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="nowhere"):
        Fault("nowhere", "status")
    fault = Fault("upload", "delay")
    assert (fault.target, fault.kind) == (Endpoint.UPLOAD, FaultKind.DELAY)


def test_random_fault_settings_are_checked() -> None:
    simulator = ChektSimulator()
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        simulator.set_random_faults(rate=1.5, faults=[Fault("events", "drop")], seed=1)
    with pytest.raises(ValueError, match="at least one fault"):
        simulator.set_random_faults(rate=0.5, faults=[], seed=1)


# -- lifecycle --


async def test_stop_and_start_on_the_same_port(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    base_url = sim.base_url
    await accepted_event(http, sim, token)
    await sim.stop()
    running_while_down = sim.running
    # A pooled keep-alive connection may not have noticed the close yet; a new connection is refused.
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientConnectorError)):
        await post_event(http, sim, token, event_body())
    with pytest.raises(aiohttp.ClientConnectorError):
        await post_event(http, sim, token, event_body())
    await sim.start()
    assert (running_while_down, sim.running) == (False, True)
    assert sim.base_url == base_url
    await accepted_event(http, sim, token)  # tokens and records survive the outage
    assert len(sim.accepted) == 2


async def test_stop_cuts_requests_in_flight(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.inject(Fault("events", "delay", seconds=30))
    request = asyncio.ensure_future(post_event(http, sim, token, event_body()))
    await sim.wait_for(lambda: len(sim.faults) == 1)
    await sim.stop()
    with pytest.raises(aiohttp.ClientError):
        await request
    await sim.start()


async def test_stop_ends_handlers_whose_client_gave_up(
    sim: ChektSimulator, http: aiohttp.ClientSession, token: str
) -> None:
    sim.inject(Fault("events", "delay", seconds=30))
    request = asyncio.ensure_future(post_event(http, sim, token, event_body()))
    await sim.wait_for(lambda: len(sim.faults) == 1)
    request.cancel()  # the client gives up and closes its connection; the handler sleeps on
    with pytest.raises(asyncio.CancelledError):
        await request
    await sim.stop()  # must not leave the sleeping handler behind (pytest-homeassistant checks for lingering tasks)
    assert sim._in_flight == set()
    assert sim.events == []


async def test_start_and_stop_are_idempotent(socket_enabled: None) -> None:
    simulator = ChektSimulator()
    await simulator.stop()
    await simulator.start()
    port = simulator.port
    await simulator.start()
    assert simulator.port == port != 0
    await simulator.stop()
    await simulator.stop()


async def test_start_fails_on_a_port_in_use(sim: ChektSimulator) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - the errno differs between platforms
        await ChektSimulator(port=sim.port).start()


def test_urls_need_a_start() -> None:
    with pytest.raises(RuntimeError, match="before its first start"):
        _ = ChektSimulator().base_url


def test_ipv6_hosts_are_bracketed() -> None:
    assert _url_host("::1") == "[::1]"
    assert _url_host("127.0.0.1") == "127.0.0.1"


def test_urls(sim: ChektSimulator) -> None:
    assert sim.base_url == f"http://127.0.0.1:{sim.port}"
    assert sim.token_url == sim.base_url + "/oauth/token"
    assert sim.issuer == sim.page_url == sim.base_url + "/"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "exactly one of"),
        ({"secret": "s", "public_key_pem": "pem"}, "exactly one of"),
        ({"secret": ""}, "must not be empty"),
        ({"public_key_pem": ec_keys("secp384r1").public_pem}, "RSA key or an EC key on P-256"),
    ],
)
def test_add_client_refuses_bad_keys(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChektSimulator().add_client("c", **arguments)


def test_add_client_refuses_empty_id() -> None:
    with pytest.raises(ValueError, match="client_id"):
        ChektSimulator().add_client("", secret="s")


def test_client_repr_hides_keys() -> None:
    client = ChektSimulator().add_client("c", secret="s3cr3t-value", api_key="k3y-value")
    assert "s3cr3t-value" not in repr(client)
    assert "k3y-value" not in repr(client)
    assert client.algorithm is SigningAlgorithm.HS256


async def test_wait_for(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    asyncio.get_running_loop().call_soon(sim.disarmed_locations.add, "X")
    await sim.wait_for(lambda: "X" in sim.disarmed_locations)

    def nothing_arrives() -> bool:
        return False

    with pytest.raises(TimeoutError, match=r"nothing_arrives still false after 0.05 s; simulator saw \{"):
        await sim.wait_for(nothing_arrives, timeout=0.05)


# -- page and state --


async def test_page_lists_events_without_secrets(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    token = await fetch_token(http, sim, API_CLIENT)
    api_key = {"X-API-KEY": API_KEY}
    first = event_body(camera_id="<script>alert(1)</script>", upload_snapshot_count=2)
    status, reply = await post_event(http, sim, token, first, **api_key)
    assert status == 201
    target = reply["uploads"]["snapshots"][0]
    await put(http, target["upload_put_url"], JPEG_BYTES, **{"Content-Type": "image/jpeg"})
    await put(http, target["callback_put_url"])
    sim.disarmed_locations.add("AWAY")
    second = event_body(location_id="AWAY", event_type="trouble")
    await post_event(http, sim, token, second, **api_key)
    await post_event(http, sim, token, "not an object", **api_key)
    sim.inject(Fault("events", "drop"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_event(http, sim, token, event_body(), **api_key)

    async with http.get(sim.page_url) as page:
        assert page.status == 200
        assert page.content_type == "text/html"
        html = await page.text()
    assert '<meta http-equiv="refresh" content="1">' in html
    assert html.index(second["event_id"]) < html.index(first["event_id"])  # newest first
    assert f'<img src="/media/{first["event_id"]}/snapshot/0"' in html
    assert f"/media/{first['event_id']}/snapshot/1" not in html  # never uploaded
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert "discarded (201)" in html
    assert "rejected (400)" in html
    assert "faulted (no reply, drop fault)" in html
    secrets = [
        token,
        API_KEY,
        HS_SECRET,
        "signature=",
        "access_token",
        target["upload_put_url"].split("signature=")[1],
    ]
    for secret in secrets:
        assert secret not in html


async def test_page_when_empty(sim: ChektSimulator, http: aiohttp.ClientSession) -> None:
    async with http.get(sim.page_url) as page:
        assert "No events yet." in await page.text()


async def test_state(sim: ChektSimulator, http: aiohttp.ClientSession, token: str) -> None:
    sim.disarmed_locations.add("AWAY")
    sim.inject(Fault("events", "status", status=500))
    sim.inject(Fault("callback", "status", status=500))
    body = event_body()
    await post_event(http, sim, token, body)
    await accepted_event(http, sim, token, **body)
    async with http.get(sim.base_url + "/api/state") as reply:
        state = await reply.json()
    assert state["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "events": 2,
        "accepted": 1,
        "discarded": 0,
        "replayed": 0,
        "rejected": 0,
        "duplicate_accepts": 0,
        "uploads": 0,
        "callbacks": 0,
        "malformed": 0,
        "faults": 1,
    }
    assert state["pending_faults"] == 1
    assert state["disarmed_locations"] == ["AWAY"]
    assert state["accepted_event_ids"] == [body["event_id"]]
    assert [(e["event_id"], e["status"], e["outcome"], e["fault"]) for e in state["events"]] == [
        (body["event_id"], 500, "faulted", "status"),
        (body["event_id"], 201, "accepted", None),
    ]
    assert token not in json.dumps(state)


# -- command line --


def test_parse_args_needs_exactly_one_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--client-id", "demo"])
    with pytest.raises(SystemExit):
        parse_args(["--client-id", "demo", "--secret", "s", "--public-key", str(tmp_path / "k.pem")])
    assert "give" in capsys.readouterr().err


async def test_build_simulator_from_the_command_line(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(rsa_keys().public_pem)
    args = parse_args(
        [
            "--client-id",
            "demo",
            "--public-key",
            str(key_file),
            "--key-id",
            "k1",
            "--disarmed",
            "L1",
            "--api-key",
            "K",
        ]
    )
    simulator = build_simulator(args)
    client = simulator.clients["demo"]
    assert (client.algorithm, client.key_id, client.api_key, client.audience) == (
        SigningAlgorithm.RS256,
        "k1",
        "K",
        args.audience,
    )
    assert simulator.disarmed_locations == {"L1"}


async def test_serve_prints_urls_and_stops(socket_enabled: None, capsys: pytest.CaptureFixture[str]) -> None:
    stop = asyncio.Event()
    stop.set()  # stop as soon as it has started and printed its URLs
    await serve(parse_args(["--port", "0", "--client-id", "demo", "--secret", "demo-secret"]), stop)
    output = capsys.readouterr().out
    assert re.search(r"api_url: +http://127\.0\.0\.1:\d+\n", output)
    assert re.search(r"token_url: +http://127\.0\.0\.1:\d+/oauth/token\n", output)
    assert "audience:  https://api.chekt.local/partner-event" in output
    assert output.endswith("CHeKT simulator stopped.\n")
    assert "demo-secret" not in output


def test_main_runs_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def fake_serve(args: Any, stop: asyncio.Event | None = None) -> None:
        seen.append(args.client_id)

    monkeypatch.setattr("tests.simulator.__main__.serve", fake_serve)
    assert main(["--client-id", "demo", "--secret", "s"]) == 0
    assert seen == ["demo"]


async def test_arrivals_are_printed_for_benchmarks(
    socket_enabled: None, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator = build_simulator(
        parse_args(["--port", "0", "--client-id", HS_CLIENT, "--secret", HS_SECRET, "--arrivals"])
    )
    async with simulator:
        form = token_form(assertion_for(simulator, HS_CLIENT), audience=simulator.clients[HS_CLIENT].audience)
        async with http.post(simulator.token_url, data=form) as reply:
            token = (await reply.json())["access_token"]
        body = event_body()
        assert (await post_event(http, simulator, token, body))[0] == 201
        assert (await post_event(http, simulator, "not-a-token", event_body()))[0] == 401
    [line] = capsys.readouterr().out.splitlines()
    word, arrived, printed = line.split(" ", 2)
    assert word == "arrival"
    assert float(arrived) > 0
    assert json.loads(printed) == body


def test_describe_names_every_url() -> None:
    simulator = ChektSimulator(port=8181)
    simulator._urls.base_url = "http://127.0.0.1:8181"
    assert "page:      http://127.0.0.1:8181/" in describe(simulator, "aud")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_standalone_process_stops_on_signal(signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "tests.simulator", "--port", "0", "--client-id", "demo", "--secret", "x"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter running our own module
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(6)]
            assert lines[0] == "CHeKT simulator listening\n"
            assert lines[-1] == "Ctrl-C to stop.\n"
            process.send_signal(signum)
            out, err = process.communicate(timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    assert process.returncode == 0, err
    assert out == "CHeKT simulator stopped.\n"
