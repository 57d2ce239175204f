"""Building blocks for tests that talk to the CHeKT simulator over HTTP: keys, assertions, bodies, media."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
import itertools
import time
from typing import Any
import uuid

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
import jwt

from tests.simulator import ChektSimulator

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EVENTS_PATH = "/partner/v1/events"

HS_CLIENT = "hs-client"
HS_SECRET = "hs-secret-that-is-long-enough-for-hmac-sha256!"
RS_CLIENT = "rs-client"
RS_KEY_ID = "rs-key-1"
ES_CLIENT = "es-client"
API_CLIENT = "api-client"
API_KEY = "api-key-0123456789"
API_AUDIENCE = "https://api.chekt.test/partner-events"

# The smallest byte strings that pass for the real thing: a JPEG SOI marker, an MP4 whose first box is `ftyp`.
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"
MP4_BYTES = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 32

# event_ids look like the spec's (microseconds since the epoch) and never repeat within a run.
_event_ids = itertools.count(time.time_ns() // 1000)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key (to sign assertions) and its PEM public key (to register with the simulator)."""

    private_pem: str
    public_pem: str


def _pair(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private_pem, public_pem)


@cache
def rsa_keys() -> KeyPair:
    """One RSA 2048 key pair per test run (generating one takes a noticeable moment)."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@cache
def ec_keys(curve_name: str = "secp256r1") -> KeyPair:
    """One EC key pair per curve per test run."""
    curve = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}[curve_name]
    return _pair(ec.generate_private_key(curve))


def register_test_clients(sim: ChektSimulator) -> None:
    """An HS256, an RS256 (with kid), an ES256 client, and one that also needs an audience and an API key."""
    sim.add_client(HS_CLIENT, secret=HS_SECRET)
    sim.add_client(RS_CLIENT, public_key_pem=rsa_keys().public_pem, key_id=RS_KEY_ID)
    sim.add_client(ES_CLIENT, public_key_pem=ec_keys().public_pem)
    sim.add_client(API_CLIENT, secret=HS_SECRET, audience=API_AUDIENCE, api_key=API_KEY)


def claims_for(client_id: str, audience: str, *, lifetime: int = 300, **overrides: Any) -> dict[str, Any]:
    """Assertion claims as CHeKT's sample builds them; `overrides` set (or, with None, remove) claims."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign(claims: dict[str, Any], *, algorithm: str, key: str, kid: str | None = None) -> str:
    """A signed JWT; for HS256 `key` is the secret, otherwise a PEM private key."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def assertion_for(sim: ChektSimulator, client_id: str = HS_CLIENT, **overrides: Any) -> str:
    """A valid assertion for one of the registered test clients (see `register_test_clients`)."""
    claims = claims_for(client_id, sim.issuer, **overrides)
    if client_id == RS_CLIENT:
        return sign(claims, algorithm="RS256", key=rsa_keys().private_pem, kid=RS_KEY_ID)
    if client_id == ES_CLIENT:
        return sign(claims, algorithm="ES256", key=ec_keys().private_pem)
    return sign(claims, algorithm="HS256", key=HS_SECRET)


def token_form(assertion: str, *, audience: str | None = None, **overrides: str | None) -> dict[str, str]:
    """The token request form; `overrides` replace (or, with None, remove) fields."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if audience is not None:
        form["audience"] = audience
    for name, value in overrides.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return form


async def fetch_token(http: aiohttp.ClientSession, sim: ChektSimulator, client_id: str = HS_CLIENT) -> str:
    """An access token for a registered test client."""
    audience = API_AUDIENCE if client_id == API_CLIENT else None
    async with http.post(sim.token_url, data=token_form(assertion_for(sim, client_id), audience=audience)) as reply:
        assert reply.status == 200, await reply.text()
        token: str = (await reply.json())["access_token"]
        return token


def event_body(*, remove: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    """The spec's example body with a fresh event_id; `fields` replace values, `remove` drops fields."""
    body: dict[str, Any] = {
        "version": "1.0",
        "location_id": "Z6RSOG",
        "recorder_id": "Z6RANV",
        "camera_id": "2fe519b4-2438-4aa1-b051-87cf22bb",
        "event_id": str(next(_event_ids)),
        "event_type": "alarm",
        "event_status": "active",
        "event_time": "2025-11-20T01:46:25.534Z",
        "sent_at": "2025-11-20T01:46:28.534Z",
        "should_signal_to_monitoring_center": True,
        "upload_snapshot_count": 1,
        "upload_short_mp4": False,
        "upload_event_mp4": True,
        "payload": {},
    } | fields
    for name in remove:
        body.pop(name)
    return body


def bearer(token: str, **extra: str) -> dict[str, str]:
    """Request headers carrying the access token."""
    return {"Authorization": f"Bearer {token}", **extra}
