"""The simulator's own URLs, known once it has bound its port."""

from __future__ import annotations

from dataclasses import dataclass

TOKEN_PATH = "/oauth/token"
EVENTS_PATH = "/partner/v1/events"


@dataclass(slots=True)
class SimUrls:
    """Base URL and the URLs derived from it; `base_url` is empty until the first start."""

    base_url: str = ""

    def _require_base(self) -> str:
        if not self.base_url:
            raise RuntimeError("the simulator has no URL before its first start()")
        return self.base_url

    @property
    def api_url(self) -> str:
        """What the client is configured with as its API URL."""
        return self._require_base()

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return self._require_base() + TOKEN_PATH

    @property
    def issuer(self) -> str:
        """The authorization server's issuer, with the trailing slash as Auth0 writes it."""
        return self._require_base() + "/"

    @property
    def page_url(self) -> str:
        """The HTML page listing received events."""
        return self._require_base() + "/"
