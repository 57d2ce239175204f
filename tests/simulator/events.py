"""`POST /partner/v1/events`: credentials, strict body validation, idempotency, and the spec's 201 reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import hmac
from http import HTTPStatus
from typing import Any
import uuid

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .auth import AccessTokens, SimClient
from .faults import Endpoint, FaultKind
from .media import MediaSigner, MediaSlot
from .records import EventOutcome, EventRecord, MalformedRecord, MediaKind, Records
from .replies import api_error
from .validation import BodyError, EventBody, parse_json, validate_event

DISARMED_REASON = "Event discarded: device is disarmed"
# Per attempt, the client stamps a new `sent_at`; a retry of the same event is still the same request.
FIELDS_IGNORED_BY_IDEMPOTENCY = frozenset({"sent_at"})


class EventRefusedError(Exception):
    """A request the event endpoint refuses, with the status and message of its reply."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        """Keep what the reply says."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers

    @property
    def is_malformed(self) -> bool:
        """Whether the request's shape or body was at fault (as opposed to its credentials)."""
        return self.status in {400, 409}


@dataclass(frozen=True, slots=True)
class CachedReply:
    """The first reply to an Idempotency-Key, and the body it answered."""

    fingerprint: dict[str, Any]
    status: int
    response: dict[str, Any]


def _fingerprint(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name not in FIELDS_IGNORED_BY_IDEMPOTENCY}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class EventEndpoint:
    """Accepts, discards or refuses events, and records every request."""

    def __init__(
        self,
        records: Records,
        tokens: AccessTokens,
        clients: Mapping[str, SimClient],
        signer: MediaSigner,
        disarmed_locations: set[str],
    ) -> None:
        """Wire the endpoint to the simulator's shared state."""
        self._records = records
        self._tokens = tokens
        self._clients = clients
        self._signer = signer
        self._disarmed_locations = disarmed_locations
        self._replies: dict[tuple[str, str], CachedReply] = {}

    async def handle(self, request: web.Request, fault: FaultKind | None) -> web.Response:
        """Answer one event request and record it, whatever the outcome."""
        record = EventRecord(
            status=0,
            outcome=EventOutcome.REJECTED,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            idempotency_key=request.headers.get("Idempotency-Key"),
            fault=fault,
        )
        self._records.events.append(record)
        try:
            record.client_id = self._authenticate(request.headers)
            body, event = await self._read_event(request, record)
            record.status, record.response = self._process(record, body, event)
        except EventRefusedError as refusal:
            reply = self._refuse(record, refusal)
        else:
            reply = web.json_response(record.response, status=record.status)
        self._records.notify(record)
        return reply

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        token = bearer_token(headers)
        client_id = self._tokens.client_id_of(token) if token else None
        client = self._clients.get(client_id) if client_id else None
        if client is None:
            raise EventRefusedError(
                401,
                "Invalid token or credentials",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if client.api_key is not None and not hmac.compare_digest(headers.get("X-API-KEY", ""), client.api_key):
            raise EventRefusedError(403, "X-API-KEY: missing or not the API key of this client")
        return client.client_id

    @staticmethod
    async def _read_event(request: web.Request, record: EventRecord) -> tuple[dict[str, Any], EventBody]:
        if request.content_type != "application/json":
            raise EventRefusedError(
                400, f"Content-Type: expected application/json, got {request.content_type or 'none'}"
            )
        try:
            record.body = parse_json(await request.read())
            event = validate_event(record.body)
        except BodyError as err:
            raise EventRefusedError(400, str(err)) from err
        record.event_id = event.event_id
        return dict(record.body), event

    def _process(self, record: EventRecord, body: dict[str, Any], event: EventBody) -> tuple[int, dict[str, Any]]:
        key = record.idempotency_key
        if key is not None:
            cached = self._cached_reply(record.client_id or "", key, body)
            if cached is not None:
                record.outcome = EventOutcome.REPLAYED
                return cached.status, cached.response
        response = self._discard(event) if event.location_id in self._disarmed_locations else self._accept(event)
        record.outcome = EventOutcome(response["status"])
        if record.outcome is EventOutcome.ACCEPTED:
            self._note_acceptance(record, event.event_id)
        if key is not None:
            self._replies[(record.client_id or "", key)] = CachedReply(_fingerprint(body), 201, response)
        return 201, response

    def _cached_reply(self, client_id: str, key: str, body: dict[str, Any]) -> CachedReply | None:
        if not key:
            raise EventRefusedError(400, "Idempotency-Key: must not be empty")
        cached = self._replies.get((client_id, key))
        if cached is not None and cached.fingerprint != _fingerprint(body):
            raise EventRefusedError(409, "Idempotency-Key: already used with a different request body")
        return cached

    def _note_acceptance(self, record: EventRecord, event_id: str) -> None:
        if event_id in self._records.accepted:
            self._records.duplicate_accepts += 1
        else:
            self._records.accepted[event_id] = record

    def _accept(self, event: EventBody) -> dict[str, Any]:
        clips = {
            kind.value: self._signer.upload_targets(MediaSlot(event.event_id, kind)) if wanted else None
            for kind, wanted in (
                (MediaKind.SHORT_MP4, event.upload_short_mp4),
                (MediaKind.EVENT_MP4, event.upload_event_mp4),
            )
        }
        snapshots = [
            self._signer.upload_targets(MediaSlot(event.event_id, MediaKind.SNAPSHOT, seq))
            for seq in range(event.upload_snapshot_count)
        ]
        return _reply(event.event_id, {"snapshots": snapshots, **clips}, "accepted", None)

    @staticmethod
    def _discard(event: EventBody) -> dict[str, Any]:
        uploads: dict[str, Any] = {
            "snapshots": [],
            MediaKind.SHORT_MP4.value: None,
            MediaKind.EVENT_MP4.value: None,
        }
        return _reply(event.event_id, uploads, "discarded", DISARMED_REASON)

    def _refuse(self, record: EventRecord, refusal: EventRefusedError) -> web.Response:
        record.status = refusal.status
        record.response = {"error": HTTPStatus(refusal.status).phrase, "message": refusal.message}
        if refusal.is_malformed:
            self._records.malformed.append(
                MalformedRecord(
                    endpoint=Endpoint.EVENTS,
                    status=refusal.status,
                    message=refusal.message,
                    event_id=record.event_id,
                )
            )
        return api_error(refusal.status, refusal.message, headers=refusal.headers)


def _reply(event_id: str, uploads: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
    """The spec's 201 body; clips that were not asked for are `null` so every key is always present."""
    return {
        "event_id": event_id,
        "response_id": str(uuid.uuid4()),
        "uploads": uploads,
        "status": status,
        "reason": reason,
    }
