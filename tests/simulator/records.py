"""What the simulator saw and answered, kept as plain dataclasses for tests to assert on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from multidict import CIMultiDictProxy

from .faults import Endpoint, FaultKind


def utc_now() -> datetime:
    """The time stamped on every record."""
    return datetime.now(UTC)


class MediaKind(StrEnum):
    """The kinds of media an event can carry, named as in the reply's `uploads` and the callback's `type`."""

    SNAPSHOT = "snapshot"
    SHORT_MP4 = "short_mp4"
    EVENT_MP4 = "event_mp4"

    @property
    def content_type(self) -> str:
        """The only Content-Type the pre-signed upload URL accepts."""
        return "image/jpeg" if self is MediaKind.SNAPSHOT else "video/mp4"


class EventOutcome(StrEnum):
    """What the simulator did with one request to the event endpoint."""

    ACCEPTED = "accepted"
    DISCARDED = "discarded"
    REPLAYED = "replayed"
    """Answered from the Idempotency-Key cache: the first reply again, nothing new recorded."""
    REJECTED = "rejected"
    """Answered 4xx: bad credentials, bad body, Idempotency-Key conflict."""
    FAULTED = "faulted"
    """Answered (or dropped) by an injected fault before processing."""


@dataclass(slots=True, kw_only=True)
class TokenRequestRecord:
    """One request to the token endpoint; `client_id` is the assertion's claimed `iss`, verified or not."""

    status: int
    client_id: str | None = None
    alg: str | None = None
    error: str | None = None
    description: str | None = None
    fault: FaultKind | None = None
    received_at: datetime = field(default_factory=utc_now)


@dataclass(slots=True, kw_only=True)
class EventRecord:
    """One request to the event endpoint.

    `body` is the parsed JSON (None when it did not parse); `response` the JSON the simulator produced, which
    for `lose_reply` / `malformed_reply` faults is not what went over the wire. `headers` keeps every request
    header, credentials included, for assertions: it is never rendered anywhere.
    """

    status: int
    outcome: EventOutcome
    headers: CIMultiDictProxy[str] = field(repr=False)
    body: Any = None
    response: dict[str, Any] | None = None
    event_id: str | None = None
    client_id: str | None = None
    idempotency_key: str | None = None
    fault: FaultKind | None = None
    received_at: datetime = field(default_factory=utc_now)


@dataclass(slots=True, kw_only=True)
class UploadRecord:
    """One accepted media upload; `valid_media` says whether the bytes look like the kind (JPEG/MP4 magic)."""

    event_id: str
    kind: MediaKind
    seq: int
    content_type: str
    data: bytes = field(repr=False)
    etag: str
    valid_media: bool
    fault: FaultKind | None = None
    received_at: datetime = field(default_factory=utc_now)

    @property
    def size(self) -> int:
        """Number of bytes uploaded."""
        return len(self.data)


@dataclass(slots=True, kw_only=True)
class CallbackRecord:
    """One authenticated upload callback; those without a preceding upload were answered 409."""

    event_id: str
    kind: MediaKind
    seq: int | None
    upload_preceded: bool
    status: int
    fault: FaultKind | None = None
    received_at: datetime = field(default_factory=utc_now)


@dataclass(slots=True, kw_only=True)
class MalformedRecord:
    """A request answered 400/409 because of its shape or body, with the message that was sent back."""

    endpoint: Endpoint
    status: int
    message: str
    event_id: str | None = None
    received_at: datetime = field(default_factory=utc_now)


@dataclass(slots=True, kw_only=True)
class FaultRecord:
    """One injected fault, as applied."""

    endpoint: Endpoint
    kind: FaultKind
    path: str
    received_at: datetime = field(default_factory=utc_now)


type RecordListener = Callable[[EventRecord | UploadRecord | CallbackRecord], None]


@dataclass(slots=True)
class Records:
    """Everything the simulator recorded; lists are append-only.

    `listeners` are called with each event, upload and callback record the moment its endpoint has answered it
    (benchmarks time arrivals with them; requests answered by a fault are not reported).
    """

    token_requests: list[TokenRequestRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    accepted: dict[str, EventRecord] = field(default_factory=dict)
    duplicate_accepts: int = 0
    uploads: list[UploadRecord] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    malformed: list[MalformedRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    listeners: list[RecordListener] = field(default_factory=list, repr=False)

    def notify(self, record: EventRecord | UploadRecord | CallbackRecord) -> None:
        """Tell every listener about `record`."""
        for listener in list(self.listeners):
            listener(record)

    def counts(self) -> dict[str, int]:
        """A summary for /api/state and for error messages."""
        outcomes = Counter(record.outcome for record in self.events)
        return {
            "token_requests": len(self.token_requests),
            "tokens_issued": sum(1 for record in self.token_requests if record.status == 200),
            "events": len(self.events),
            "accepted": len(self.accepted),
            "discarded": outcomes[EventOutcome.DISCARDED],
            "replayed": outcomes[EventOutcome.REPLAYED],
            "rejected": outcomes[EventOutcome.REJECTED],
            "duplicate_accepts": self.duplicate_accepts,
            "uploads": len(self.uploads),
            "callbacks": len(self.callbacks),
            "malformed": len(self.malformed),
            "faults": len(self.faults),
        }
