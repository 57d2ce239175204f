"""The token endpoint: RFC 7523 client assertions in, short-lived access tokens out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import hmac
import secrets
import time
from typing import Any
import uuid
import warnings

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
import jwt

from .faults import Endpoint, FaultKind
from .records import MalformedRecord, Records, TokenRequestRecord
from .replies import oauth_error
from .urls import SimUrls

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Auth0 refuses assertions that live longer than this; a client that mints 5-minute assertions is well inside.
MAX_ASSERTION_LIFETIME = 600
# Clocks of the client and the simulator are the same machine's; a little slack covers rounding only.
CLOCK_SLACK = 5
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")

type VerificationKey = str | RSAPublicKey | EllipticCurvePublicKey


class SigningAlgorithm(StrEnum):
    """The assertion algorithms the simulator accepts, one per kind of registered key."""

    HS256 = "HS256"
    RS256 = "RS256"
    ES256 = "ES256"


@dataclass(frozen=True, slots=True)
class SimClient:
    """One registered M2M application: its id, its key and what its assertions and requests must carry."""

    client_id: str
    algorithm: SigningAlgorithm
    verification_key: VerificationKey = field(repr=False)
    key_id: str | None = None
    audience: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def register(
        cls,
        client_id: str,
        *,
        secret: str | None = None,
        public_key_pem: str | None = None,
        key_id: str | None = None,
        audience: str | None = None,
        api_key: str | None = None,
    ) -> SimClient:
        """A client with a shared secret (HS256) or a PEM public key (RS256 for RSA, ES256 for P-256)."""
        if not client_id:
            raise ValueError("client_id must not be empty")
        if (secret is None) == (public_key_pem is None):
            raise ValueError("register a client with exactly one of secret and public_key_pem")
        if secret is not None:
            if not secret:
                raise ValueError("secret must not be empty")
            return cls(client_id, SigningAlgorithm.HS256, secret, key_id, audience, api_key)
        assert public_key_pem is not None
        algorithm, key = _load_public_key(public_key_pem)
        return cls(client_id, algorithm, key, key_id, audience, api_key)


def _load_public_key(pem: str) -> tuple[SigningAlgorithm, RSAPublicKey | EllipticCurvePublicKey]:
    key = load_pem_public_key(pem.encode())
    if isinstance(key, RSAPublicKey):
        return SigningAlgorithm.RS256, key
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return SigningAlgorithm.ES256, key
    raise ValueError("public_key_pem must be an RSA key or an EC key on P-256")


class TokenError(Exception):
    """A refused token request, carrying the OAuth error reply."""

    def __init__(self, status: int, error: str, description: str) -> None:
        """Keep what the reply says."""
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def reply(self) -> web.Response:
        """The OAuth error reply."""
        headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if self.status == 401 else None
        return oauth_error(self.status, self.error, self.description, headers=headers)


def _bad_request(description: str) -> TokenError:
    return TokenError(400, "invalid_request", description)


def _bad_client(description: str) -> TokenError:
    return TokenError(401, "invalid_client", description)


class AccessTokens:
    """Access tokens the simulator issued: JWTs under its own key, valid until they expire or are revoked."""

    def __init__(self, urls: SimUrls, ttl: int) -> None:
        """Tokens live `ttl` seconds."""
        self._urls = urls
        self._ttl = ttl
        self._key = secrets.token_bytes(32)
        self._live: set[str] = set()

    @property
    def ttl(self) -> int:
        """Lifetime of a new token in seconds."""
        return self._ttl

    def issue(self, client: SimClient) -> str:
        """A new token bound to the client."""
        now = int(time.time())
        token_id = str(uuid.uuid4())
        claims = {
            "iss": self._urls.issuer,
            "sub": client.client_id,
            "aud": client.audience or self._urls.api_url,
            "iat": now,
            "exp": now + self._ttl,
            "jti": token_id,
        }
        self._live.add(token_id)
        return jwt.encode(claims, self._key, algorithm="HS256")

    def client_id_of(self, token: str) -> str | None:
        """The client a valid, unexpired, unrevoked token was issued to; None for any other string."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                options={"verify_aud": False, "require": ["exp", "jti"]},
            )
        except jwt.InvalidTokenError:
            return None
        if claims["jti"] not in self._live:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) else None

    def revoke_all(self) -> None:
        """Every token issued so far stops working."""
        self._live.clear()


class AssertionVerifier:
    """Checks a client assertion the way an RFC 7523 authorization server does, and remembers used `jti`s."""

    def __init__(self, urls: SimUrls, clients: Mapping[str, SimClient]) -> None:
        """Verify against the registered clients."""
        self._urls = urls
        self._clients = clients
        self._used_ids: set[str] = set()

    def verify(self, assertion: UnverifiedAssertion, form_client_id: str | None) -> SimClient:
        """The client the assertion authenticates, or a TokenError saying what is wrong with it."""
        client = self._claimed_client(assertion.claims, form_client_id)
        self._check_header(assertion.header, client)
        claims = self._verified_claims(assertion.text, client)
        self._check_lifetime(claims)
        self._consume_id(claims)
        return client

    def _claimed_client(self, claims: dict[str, Any], form_client_id: str | None) -> SimClient:
        issuer, subject = claims.get("iss"), claims.get("sub")
        if not isinstance(issuer, str) or not issuer:
            raise _bad_client("iss: missing; it must be the client id")
        if subject != issuer:
            raise _bad_client("sub: must equal iss (the client id)")
        if form_client_id is not None and form_client_id != issuer:
            raise _bad_client("client_id: does not match the assertion's iss")
        client = self._clients.get(issuer)
        if client is None:
            raise _bad_client("unknown client")
        return client

    @staticmethod
    def _check_header(header: dict[str, Any], client: SimClient) -> None:
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise _bad_client("alg: unsigned assertions are not accepted")
        if algorithm != client.algorithm:
            raise _bad_client(f"alg: {algorithm} does not match the key registered for this client")
        if client.key_id is not None and header.get("kid") != client.key_id:
            raise _bad_client("kid: not the key id registered for this client")

    def _verified_claims(self, assertion: str, client: SimClient) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                # Whatever secret CHeKT registered is the secret; its length is not ours to judge here.
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                return jwt.decode(
                    assertion,
                    client.verification_key,
                    algorithms=[client.algorithm.value],
                    audience=[self._urls.issuer, self._urls.token_url],
                    options={"require": list(REQUIRED_CLAIMS), "verify_iss": False, "verify_sub": False},
                    leeway=0,
                )
        except jwt.InvalidSignatureError as err:
            raise _bad_client("signature does not verify with the key registered for this client") from err
        except jwt.ExpiredSignatureError as err:
            raise _bad_client("exp: the assertion has expired") from err
        except jwt.InvalidAudienceError as err:
            raise _bad_client("aud: must be the issuer or the token endpoint URL") from err
        except jwt.MissingRequiredClaimError as err:
            raise _bad_client(f"{err.claim}: missing") from err
        except jwt.ImmatureSignatureError as err:
            raise _bad_client("iat: issued in the future") from err
        except jwt.InvalidTokenError as err:
            raise _bad_client(f"invalid assertion: {err}") from err

    @staticmethod
    def _check_lifetime(claims: dict[str, Any]) -> None:
        if claims["exp"] - time.time() > MAX_ASSERTION_LIFETIME + CLOCK_SLACK:
            raise _bad_client("exp: more than 10 minutes ahead")

    def _consume_id(self, claims: dict[str, Any]) -> None:
        assertion_id = claims["jti"]
        if not isinstance(assertion_id, str) or not assertion_id:
            raise _bad_client("jti: must be a non-empty string")
        if assertion_id in self._used_ids:
            raise _bad_client("jti: this assertion was used before")
        self._used_ids.add(assertion_id)


@dataclass(frozen=True, slots=True)
class UnverifiedAssertion:
    """An assertion's header and claims before any verification: they say which client claims to ask."""

    text: str = field(repr=False)
    header: dict[str, Any]
    claims: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> UnverifiedAssertion:
        """Split the JWT, or refuse the request as malformed."""
        try:
            header = jwt.get_unverified_header(text)
            claims = jwt.decode(text, options={"verify_signature": False})
        except jwt.InvalidTokenError as err:
            raise _bad_request("client_assertion: not a JWT") from err
        return cls(text, header, claims)

    @property
    def claimed_client_id(self) -> str | None:
        """The `iss` claim, when it is a string."""
        issuer = self.claims.get("iss")
        return issuer if isinstance(issuer, str) else None

    @property
    def algorithm(self) -> str | None:
        """The header's `alg`, when it is a string."""
        algorithm = self.header.get("alg")
        return algorithm if isinstance(algorithm, str) else None


@dataclass(frozen=True, slots=True)
class TokenForm:
    """The fields of a token request the simulator looks at."""

    assertion: str
    audience: str | None
    client_id: str | None


def parse_token_form(content_type: str, form: Mapping[str, str]) -> TokenForm:
    """The token request's form, or the 400 an authorization server gives for a malformed one."""
    if content_type != "application/x-www-form-urlencoded":
        raise _bad_request(f"Content-Type: expected application/x-www-form-urlencoded, got {content_type or 'none'}")
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _bad_request("grant_type: missing")
    if grant_type != GRANT_TYPE:
        raise TokenError(400, "unsupported_grant_type", f"grant_type: only {GRANT_TYPE} is supported")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _bad_request(f"client_assertion_type: must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise _bad_request("client_assertion: missing")
    return TokenForm(assertion, form.get("audience"), form.get("client_id"))


def check_audience(client: SimClient, requested: str | None) -> None:
    """A client registered for an API audience must ask for exactly that audience.

    Auth0, which sits behind CHeKT's token endpoint, answers 403 `access_denied` for a missing or unknown
    audience: the request is well formed, the client is just not allowed that API.
    """
    if client.audience is None:
        return
    if requested is None:
        raise TokenError(403, "access_denied", "audience: missing, and this client has no default audience")
    if not hmac.compare_digest(requested, client.audience):
        raise TokenError(403, "access_denied", "audience: not the API audience registered for this client")


class TokenEndpoint:
    """`POST /oauth/token`."""

    def __init__(self, records: Records, verifier: AssertionVerifier, tokens: AccessTokens) -> None:
        """Record into `records`, verify with `verifier`, issue from `tokens`."""
        self._records = records
        self._verifier = verifier
        self._tokens = tokens

    async def handle(self, request: web.Request, fault: FaultKind | None) -> web.Response:
        """Answer one token request; refusals use the OAuth error shape."""
        record = TokenRequestRecord(status=200, fault=fault)
        self._records.token_requests.append(record)
        try:
            client = self._authenticate(request.content_type, await _form_fields(request), record)
        except TokenError as err:
            record.status, record.error, record.description = err.status, err.error, err.description
            if err.status == 400:
                self._records.malformed.append(
                    MalformedRecord(endpoint=Endpoint.TOKEN, status=400, message=err.description)
                )
            return err.reply()
        payload = {
            "access_token": self._tokens.issue(client),
            "token_type": "Bearer",
            "expires_in": self._tokens.ttl,
        }
        return web.json_response(payload, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate(self, content_type: str, fields: dict[str, str], record: TokenRequestRecord) -> SimClient:
        form = parse_token_form(content_type, fields)
        assertion = UnverifiedAssertion.parse(form.assertion)
        record.client_id, record.alg = assertion.claimed_client_id, assertion.algorithm
        client = self._verifier.verify(assertion, form.client_id)
        check_audience(client, form.audience)
        return client


async def _form_fields(request: web.Request) -> dict[str, str]:
    """The text fields of a form body; anything else (a JSON body, say) gives no fields."""
    if request.content_type != "application/x-www-form-urlencoded":
        return {}
    form = await request.post()
    return {name: value for name, value in form.items() if isinstance(value, str)}
