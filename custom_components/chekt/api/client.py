"""The CHeKT Partner Event API client: events, media uploads and their callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
import uuid

import aiohttp
from yarl import URL

from .auth import TokenProvider
from .errors import ChektAuthError, ChektResponseError
from .models import (
    EVENTS_PATH,
    ChektEvent,
    DeliveryStatus,
    EventReceipt,
    EventUploads,
    MediaKind,
    UploadTarget,
)
from .signing import SigningKey
from .transport import HttpReply, raise_for_status, send, validated_url

DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_UPLOAD_TIMEOUT = 60.0
EVENT_REQUEST = "event request"
UPLOAD_REQUEST = "media upload"
CALLBACK_REQUEST = "upload callback"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChektCredentials:
    """What CHeKT issues at registration. The key and API key never show in a repr."""

    token_url: str
    client_id: str
    signing_key: SigningKey = field(repr=False)
    audience: str | None = None
    api_key: str | None = field(default=None, repr=False)


class ChektClient:
    """Sends events to one CHeKT application. The aiohttp session is the caller's, and so is its lifetime."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        credentials: ChektCredentials,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    ) -> None:
        """Check the URLs now, so that a bad configuration fails here and not deep inside a send."""
        self._session = session
        self._events_url = validated_url("api_url", api_url).with_query(None).with_fragment(None)
        self._events_url = self._events_url.with_path(self._events_url.path.rstrip("/") + EVENTS_PATH)
        self._api_key = credentials.api_key or None
        self._request_timeout = request_timeout
        self._upload_timeout = upload_timeout
        self.tokens = TokenProvider(
            session,
            token_url=validated_url("token_url", credentials.token_url),
            client_id=credentials.client_id,
            signing_key=credentials.signing_key,
            audience=credentials.audience or None,
            timeout=request_timeout,
        )

    def __repr__(self) -> str:
        """Show where the client sends, never how it authenticates."""
        return f"ChektClient(events_url={str(self._events_url)!r})"

    async def authenticate(self) -> None:
        """Fetch a token now: proves the credentials (the config flow's connection test)."""
        await self.tokens.token()

    async def send_event(
        self, event: ChektEvent, *, sent_at: datetime | None = None, idempotency_key: str | None = None
    ) -> EventReceipt:
        """POST one event. A refused token is renewed once and the request retried once.

        `Idempotency-Key` defaults to the event id: a retry after a lost reply cannot make a second alarm.
        """
        body = event.to_request_body(sent_at or datetime.now(UTC))
        key = idempotency_key or event.event_id
        reply = await self._post_event(body, key)
        if reply.status == 401:
            reply = await self._post_event(body, key)
            if reply.status == 401:
                raise ChektAuthError("the CHeKT API refused a freshly issued access token")
        raise_for_status(reply, expected=(200, 201))
        return parse_receipt(reply.json_object())

    async def upload(self, target: UploadTarget, data: bytes, *, content_type: str | None = None) -> None:
        """PUT media to its pre-signed URL. No Authorization header: the URL is its own credential."""
        reply = await send(
            self._session,
            "PUT",
            URL(target.upload_put_url, encoded=True),
            data=data,
            headers={"Content-Type": content_type or target.kind.content_type},
            timeout=self._upload_timeout,
            what=f"{target.kind.value} {UPLOAD_REQUEST}",
        )
        raise_for_status(reply, expected=(200, 201, 204))

    async def confirm_upload(self, target: UploadTarget) -> None:
        """PUT the callback URL, telling CHeKT that the upload of `target` is complete."""
        reply = await send(
            self._session,
            "PUT",
            URL(target.callback_put_url, encoded=True),
            timeout=self._request_timeout,
            what=f"{target.kind.value} {CALLBACK_REQUEST}",
        )
        raise_for_status(reply, expected=(200, 201, 204))

    async def _post_event(self, body: dict[str, Any], idempotency_key: str) -> HttpReply:
        token = await self.tokens.token()
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key,
            "x-partner-trace-id": str(uuid.uuid4()),
        }
        if self._api_key:
            headers["X-API-KEY"] = self._api_key
        reply = await send(
            self._session,
            "POST",
            self._events_url,
            json_body=body,
            headers=headers,
            timeout=self._request_timeout,
            what=EVENT_REQUEST,
        )
        if reply.status == 401:
            self.tokens.invalidate(token)
        return reply


def parse_receipt(body: dict[str, Any]) -> EventReceipt:
    """The typed form of the spec's 201 reply, or `ChektResponseError` naming what does not fit."""
    try:
        status = DeliveryStatus(str(body.get("status")))
    except ValueError:
        raise ChektResponseError("the event reply has no valid status") from None
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ChektResponseError("the event reply's reason is not a string")
    uploads = body.get("uploads")
    if uploads is None:
        uploads = {}
    if not isinstance(uploads, dict):
        raise ChektResponseError("the event reply's uploads is not an object")
    return EventReceipt(
        event_id=_required_str(body, "event_id"),
        response_id=_required_str(body, "response_id"),
        status=status,
        reason=reason,
        uploads=_parse_uploads(uploads),
    )


def _parse_uploads(uploads: dict[str, Any]) -> EventUploads:
    snapshots = uploads.get("snapshots")
    if snapshots is None:
        snapshots = []
    if not isinstance(snapshots, list):
        raise ChektResponseError("the event reply's uploads.snapshots is not a list")
    return EventUploads(
        snapshots=tuple(
            _parse_target(item, MediaKind.SNAPSHOT, f"uploads.snapshots[{index}]")
            for index, item in enumerate(snapshots)
        ),
        short_mp4=_optional_target(uploads, MediaKind.SHORT_MP4),
        event_mp4=_optional_target(uploads, MediaKind.EVENT_MP4),
    )


def _optional_target(uploads: dict[str, Any], kind: MediaKind) -> UploadTarget | None:
    item = uploads.get(kind.value)
    return None if item is None else _parse_target(item, kind, f"uploads.{kind.value}")


def _parse_target(item: object, kind: MediaKind, where: str) -> UploadTarget:
    if not isinstance(item, dict):
        raise ChektResponseError(f"the event reply's {where} is not an object")
    seq = item.get("seq", 0)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ChektResponseError(f"the event reply's {where}.seq is not a sequence number")
    return UploadTarget(
        kind=kind,
        upload_put_url=_required_url(item, "upload_put_url", where),
        callback_put_url=_required_url(item, "callback_put_url", where),
        seq=seq,
    )


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ChektResponseError(f"the event reply has no {key}")
    return value


def _required_url(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        try:
            if URL(value, encoded=True).host:  # what `upload` and `confirm_upload` will send to
                return value
        except ValueError:
            pass
    raise ChektResponseError(f"the event reply's {where}.{key} is not a URL")
