"""OAuth 2.0 client credentials with a JWT client assertion: getting, caching and renewing the token."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import math
import time
from typing import Any

import aiohttp
import jwt
from yarl import URL

from .errors import ChektAuthError, ChektRequestRejectedError, ChektResponseError
from .signing import ASSERTION_TYPE, SigningKey
from .transport import HttpReply, raise_for_status, send

# Renew this long before the token expires, so that no event goes out with a token about to lapse.
RENEW_MARGIN = 60.0
DEFAULT_TOKEN_LIFETIME = 3600.0
TOKEN_REQUEST = "token request"
# OAuth error codes that mean our request was malformed rather than our credentials wrong.
MALFORMED_REQUEST_ERRORS = frozenset({"invalid_request", "unsupported_grant_type"})


def assertion_audience(token_url: URL) -> str:
    """The assertion's `aud`: the authorization server's issuer, scheme and host with a trailing slash."""
    return str(token_url.origin()) + "/"


class TokenProvider:
    """Hands out a valid access token, asking the token endpoint only when needed and only once at a time."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token_url: URL,
        client_id: str,
        signing_key: SigningKey,
        audience: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Nothing is requested until the first `token()`."""
        self._session = session
        self._token_url = token_url
        self._client_id = client_id
        self._signing_key = signing_key
        self._audience = audience
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.requests_made = 0

    def __repr__(self) -> str:
        """Never show the token."""
        return f"TokenProvider(client_id={self._client_id!r}, token_url={str(self._token_url)!r})"

    @property
    def expires_at(self) -> float:
        """When the cached token expires (epoch seconds); 0 when there is none."""
        return self._expires_at if self._token else 0.0

    async def token(self) -> str:
        """A token valid for at least `RENEW_MARGIN` more seconds; concurrent callers share one request."""
        if (cached := self._valid_token()) is not None:
            return cached
        async with self._lock:
            if (cached := self._valid_token()) is not None:
                return cached
            self._token, self._expires_at = await self._request_token()
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after the API refused it, unless a newer one has replaced it meanwhile."""
        if self._token == token:
            self._token = None
            self._expires_at = 0.0

    def _valid_token(self) -> str | None:
        if self._token is not None and self._clock() < self._expires_at - RENEW_MARGIN:
            return self._token
        return None

    async def _request_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._signing_key.make_assertion(
                client_id=self._client_id, audience=assertion_audience(self._token_url), now=self._clock()
            ),
        }
        if self._audience:
            form["audience"] = self._audience
        self.requests_made += 1
        requested_at = self._clock()
        reply = await send(
            self._session,
            "POST",
            self._token_url,
            form=form,
            headers={"Accept": "application/json"},
            timeout=self._timeout,
            what=TOKEN_REQUEST,
        )
        if reply.status in (400, 401, 403):
            if _oauth_error_code(reply) in MALFORMED_REQUEST_ERRORS:
                raise ChektRequestRejectedError(reply.status, reply.cloud_message())
            raise ChektAuthError(f"the token endpoint refused the credentials: {reply.cloud_message()}")
        raise_for_status(reply, expected=(200,))
        return _parse_token_reply(reply.json_object(), requested_at)


def _oauth_error_code(reply: HttpReply) -> str | None:
    try:
        code = reply.json_object().get("error")
    except ChektResponseError:
        return None
    return code if isinstance(code, str) else None


def _parse_token_reply(body: dict[str, Any], requested_at: float) -> tuple[str, float]:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ChektResponseError("the token endpoint's reply has no access_token")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ChektResponseError("the token endpoint issued a token that is not a Bearer token")
    return token, requested_at + _lifetime(body.get("expires_in"), token, requested_at)


def _lifetime(expires_in: object, token: str, now: float) -> float:
    """`expires_in` when given, else the token's own `exp`, else an hour (as CHeKT documents)."""
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        expires_in = float(expires_in)
    seconds = _finite_number(expires_in)
    if seconds is not None and seconds > 0:
        return seconds
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return DEFAULT_TOKEN_LIFETIME
    exp = _finite_number(claims.get("exp"))
    if exp is not None:
        return max(0.0, exp - now)
    return DEFAULT_TOKEN_LIFETIME


def _finite_number(value: object) -> float | None:
    """A JSON number as a finite float; None for anything else, and for what no float can hold."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
