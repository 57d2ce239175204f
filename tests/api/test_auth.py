"""The token provider against the local CHeKT cloud: refusals, and how long a token is trusted."""

from __future__ import annotations

import json
import time

import aiohttp
import jwt
import pytest
from yarl import URL

from custom_components.chekt.api import (
    ChektAuthError,
    ChektClient,
    ChektCredentials,
    ChektRequestRejectedError,
    SigningKey,
)
from custom_components.chekt.api.auth import DEFAULT_TOKEN_LIFETIME, TokenProvider, _lifetime
from tests.simulator import ChektSimulator, Fault

from .helpers import SECRET, Canned, CannedServer

# Any key signs a token the client only reads, never verifies.
ISSUER_KEY = "the-issuer-key-of-these-test-tokens-0123"


def provider(
    sim: ChektSimulator, session: aiohttp.ClientSession, now: float, audience: str | None = "events-api"
) -> TokenProvider:
    """A provider whose clock stands still at `now`, so that expiry times are exact."""
    return TokenProvider(
        session,
        token_url=URL(sim.token_url),
        client_id="hs-client",
        signing_key=SigningKey.parse(SECRET),
        audience=audience,
        clock=lambda: now,
    )


def token_reply(sim: ChektSimulator, **fields: object) -> None:
    """The next token request is processed as usual but answered 200 with exactly `fields`."""
    sim.inject(Fault("token", "malformed_reply", body=json.dumps(fields)))


def a_jwt(**claims: object) -> str:
    return jwt.encode(claims, ISSUER_KEY, algorithm="HS256")


# -- refusals by the token endpoint --


def canned_client(canned: CannedServer, session: aiohttp.ClientSession) -> ChektClient:
    credentials = ChektCredentials(
        token_url=canned.url("/oauth/token"),
        client_id="c",
        signing_key=SigningKey.parse("a-secret-for-the-canned-server-0123456789"),
    )
    return ChektClient(session, api_url=canned.url("/"), credentials=credentials)


@pytest.mark.parametrize("error", ["invalid_request", "unsupported_grant_type"])
async def test_malformed_token_request_is_rejected_not_an_auth_failure(
    canned: CannedServer, session: aiohttp.ClientSession, error: str
) -> None:
    # Our request was wrong, not our credentials: asking the user to re-enter them would not help.
    body = json.dumps({"error": error, "error_description": "client_assertion: not a JWT"}).encode()
    canned.replies["/oauth/token"] = Canned(400, body, {"Content-Type": "application/json"})
    with pytest.raises(ChektRequestRejectedError) as caught:
        await canned_client(canned, session).authenticate()
    assert caught.value.status == 400
    assert caught.value.cloud_message == "client_assertion: not a JWT"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        pytest.param(400, b"<html>Bad Request</html>", "HTTP 400 without an explanation", id="HTML 400"),
        pytest.param(403, b"", "HTTP 403 without an explanation", id="empty 403"),
        pytest.param(400, b'{"error": 7}', "HTTP 400 without an explanation", id="error not a string"),
        pytest.param(400, b'{"error": "invalid_grant"}', "invalid_grant", id="invalid_grant"),
    ],
)
async def test_other_token_refusals_are_auth_errors(
    canned: CannedServer, session: aiohttp.ClientSession, status: int, body: bytes, message: str
) -> None:
    canned.replies["/oauth/token"] = Canned(status, body)
    with pytest.raises(ChektAuthError) as caught:
        await canned_client(canned, session).authenticate()
    assert str(caught.value).endswith(message)


async def test_access_denied_from_the_simulator_is_an_auth_error(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    # The client is registered for an audience; asking for none, it gets 403 access_denied.
    tokens = provider(sim, session, time.time(), audience=None)
    with pytest.raises(ChektAuthError, match="audience"):
        await tokens.token()
    assert sim.token_requests[-1].status == 403
    assert tokens.expires_at == 0.0


# -- how long a token is trusted --


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        pytest.param(7200, 7200.0, id="number"),
        pytest.param(90.5, 90.5, id="fraction"),
        pytest.param("7200", 7200.0, id="digit string"),
        pytest.param("0", DEFAULT_TOKEN_LIFETIME, id="zero string"),
        pytest.param("1.5", DEFAULT_TOKEN_LIFETIME, id="decimal string"),
        pytest.param("\u00b2", DEFAULT_TOKEN_LIFETIME, id="superscript two"),
        pytest.param(0, DEFAULT_TOKEN_LIFETIME, id="zero"),
        pytest.param(-60, DEFAULT_TOKEN_LIFETIME, id="negative"),
        pytest.param(True, DEFAULT_TOKEN_LIFETIME, id="boolean"),
        pytest.param(None, DEFAULT_TOKEN_LIFETIME, id="null"),
    ],
)
async def test_token_lifetime_from_expires_in(
    sim: ChektSimulator, session: aiohttp.ClientSession, expires_in: object, lifetime: float
) -> None:
    # An opaque token (not a JWT) leaves only expires_in, else the hour CHeKT documents.
    now = time.time()
    tokens = provider(sim, session, now)
    token_reply(sim, access_token="opaque-token", token_type="Bearer", expires_in=expires_in)
    assert await tokens.token() == "opaque-token"
    assert tokens.expires_at == now + lifetime


async def test_token_lifetime_from_the_jwt_exp_without_expires_in(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    now = time.time()
    exp = int(now) + 1800
    tokens = provider(sim, session, now)
    token = a_jwt(sub="hs-client", exp=exp, nbf=exp)  # not yet valid: the client reads, never verifies
    token_reply(sim, access_token=token, token_type="bearer")
    assert await tokens.token() == token
    assert tokens.expires_at == pytest.approx(exp)
    assert await tokens.token() == token
    assert tokens.requests_made == 1


async def test_expires_in_wins_over_the_jwt_exp(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    now = time.time()
    tokens = provider(sim, session, now)
    token_reply(sim, access_token=a_jwt(exp=int(now) + 1800), token_type="Bearer", expires_in="600")
    await tokens.token()
    assert tokens.expires_at == now + 600


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": "hs-client"}, id="no exp"),
        pytest.param({"exp": "tomorrow"}, id="exp not a number"),
        pytest.param({"exp": True}, id="exp a boolean"),
        pytest.param({"exp": 10**400}, id="exp beyond any float"),
    ],
)
async def test_jwt_without_a_usable_exp_lives_an_hour(
    sim: ChektSimulator, session: aiohttp.ClientSession, claims: dict[str, object]
) -> None:
    now = time.time()
    tokens = provider(sim, session, now)
    token_reply(sim, access_token=a_jwt(**claims), token_type="Bearer")
    await tokens.token()
    assert tokens.expires_at == now + DEFAULT_TOKEN_LIFETIME


async def test_token_that_expired_on_arrival_is_used_once_then_renewed(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    now = time.time()
    tokens = provider(sim, session, now)
    stale = a_jwt(exp=int(now) - 10)
    token_reply(sim, access_token=stale, token_type="Bearer")
    assert await tokens.token() == stale
    assert tokens.expires_at == now
    fresh = await tokens.token()
    assert fresh != stale
    assert tokens.requests_made == 2
    assert [record.status for record in sim.token_requests] == [200, 200]


async def test_invalidating_an_older_token_keeps_the_newer_one(
    sim: ChektSimulator, session: aiohttp.ClientSession
) -> None:
    # Two sends that got a 401 for the same token: the second must not throw away the renewed token.
    tokens = provider(sim, session, time.time())
    old = await tokens.token()
    tokens.invalidate(old)
    assert tokens.expires_at == 0.0
    new = await tokens.token()
    expires_at = tokens.expires_at
    tokens.invalidate(old)
    assert await tokens.token() == new
    assert tokens.expires_at == expires_at
    assert tokens.requests_made == 2


async def test_provider_repr_shows_no_token(sim: ChektSimulator, session: aiohttp.ClientSession) -> None:
    tokens = provider(sim, session, time.time())
    token = await tokens.token()
    assert repr(tokens) == f"TokenProvider(client_id='hs-client', token_url='{sim.token_url}')"
    assert token not in repr(tokens)


@pytest.mark.parametrize(
    ("expires_in", "token", "lifetime"),
    [
        pytest.param(120, "opaque", 120.0, id="expires_in"),
        pytest.param("120", "opaque", 120.0, id="expires_in as digits"),
        pytest.param("\u0663", "opaque", DEFAULT_TOKEN_LIFETIME, id="non-ASCII digit"),
        pytest.param("\u00b2", "opaque", DEFAULT_TOKEN_LIFETIME, id="superscript digit"),
        pytest.param("9" * 5000, "opaque", DEFAULT_TOKEN_LIFETIME, id="digits beyond any float"),
        pytest.param(float("inf"), "opaque", DEFAULT_TOKEN_LIFETIME, id="infinite"),
        pytest.param(float("nan"), "opaque", DEFAULT_TOKEN_LIFETIME, id="not a number"),
        pytest.param(10**400, a_jwt(exp=1300), 300.0, id="huge expires_in falls back to exp"),
        pytest.param(None, "a.b.c", DEFAULT_TOKEN_LIFETIME, id="not a JWT"),
        pytest.param(None, a_jwt(exp=1300), 300.0, id="exp"),
        pytest.param(None, a_jwt(exp=1300.5), 300.5, id="fractional exp"),
        pytest.param(None, a_jwt(exp=900.5), 0.0, id="exp in the past"),
        pytest.param(None, a_jwt(exp=10**400), DEFAULT_TOKEN_LIFETIME, id="exp beyond any float"),
    ],
)
def test_lifetime(expires_in: object, token: str, lifetime: float) -> None:
    assert _lifetime(expires_in, token, 1000.0) == lifetime
