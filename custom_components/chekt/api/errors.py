"""Errors of the CHeKT client, one class for each thing a caller can do something about.

Messages never contain a credential: no signing key, token, pre-signed URL or callback token.
"""

from __future__ import annotations

from enum import StrEnum


class ChektError(Exception):
    """Base class of every error the client raises."""


class ChektConfigError(ChektError):
    """The client was configured with something it cannot use (caught before any request is made)."""


class KeyProblem(StrEnum):
    """Why a signing key cannot be used; doubles as a translation key suffix in the integration."""

    EMPTY = "empty"
    UNPARSEABLE = "unparseable"
    ENCRYPTED = "encrypted"
    PUBLIC_KEY = "public_key"
    UNSUPPORTED = "unsupported"


class ChektKeyError(ChektConfigError):
    """The signing key is empty, not a key, encrypted, a public key, or of a kind the API cannot use."""

    def __init__(self, problem: KeyProblem, message: str) -> None:
        """Keep the machine-readable problem next to the human message."""
        super().__init__(message)
        self.problem = problem


class ChektUrlError(ChektConfigError):
    """A configured URL is not an absolute http(s) URL, or is plain http to a host that is not loopback."""

    def __init__(self, field: str, message: str, *, insecure: bool = False) -> None:
        """Name the field that holds the bad URL."""
        super().__init__(message)
        self.field = field
        self.insecure = insecure


class ChektAuthError(ChektError):
    """The token endpoint refused our credentials, or the API refused a freshly minted token."""


class ChektRateLimitedError(ChektError):
    """The cloud answered 429; `retry_after` is how long it asked us to wait, when it said."""

    def __init__(self, retry_after: float | None) -> None:
        """Keep the wait the cloud asked for."""
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(f"rate limited by the CHeKT cloud{wait}")
        self.retry_after = retry_after


class ChektServerError(ChektError):
    """The cloud failed (5xx): safe to retry with backoff."""

    def __init__(self, status: int) -> None:
        """Keep the status."""
        super().__init__(f"the CHeKT cloud failed with HTTP {status}")
        self.status = status


class ChektRequestRejectedError(ChektError):
    """The cloud refused the request itself (400, 403, 404, 409 ...): sending it again will not help."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and the cloud's own explanation."""
        super().__init__(f"the CHeKT cloud rejected the request with HTTP {status}: {message}")
        self.status = status
        self.cloud_message = message


class ChektConnectionError(ChektError):
    """The cloud could not be reached, or the connection broke before a reply.

    `request_sent` is False only when no connection was made: then the cloud cannot have seen the request.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        """Say whether the request may have reached the cloud."""
        super().__init__(message)
        self.request_sent = request_sent


class ChektTimeoutError(ChektError):
    """The cloud did not answer in time."""


class ChektResponseError(ChektError):
    """The cloud answered with something that is not the spec's reply."""
