"""Typed requests and replies of the CHeKT Partner Event API (spec v0.8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from yarl import URL

API_VERSION = "1.0"
EVENTS_PATH = "/partner/v1/events"


class EventType(StrEnum):
    """What happened: the three event types the spec defines."""

    ALARM = "alarm"
    TROUBLE = "trouble"
    ARMING = "arming"


class EventStatus(StrEnum):
    """Whether the condition began or ended."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class DeliveryStatus(StrEnum):
    """What the cloud did with an event."""

    ACCEPTED = "accepted"
    DISCARDED = "discarded"


class MediaKind(StrEnum):
    """The kinds of media an event can carry, named as in the reply's `uploads` and the callback's `type`."""

    SNAPSHOT = "snapshot"
    SHORT_MP4 = "short_mp4"
    EVENT_MP4 = "event_mp4"

    @property
    def content_type(self) -> str:
        """The Content-Type the pre-signed URL expects."""
        return "image/jpeg" if self is MediaKind.SNAPSHOT else "video/mp4"


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, as in the spec's example."""
    if moment.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def url_expiry(url: str) -> datetime | None:
    """The expiry a pre-signed URL carries: S3 v4 (`X-Amz-Date` + `X-Amz-Expires`), S3 v2 (`Expires`).

    Also `expires` (epoch seconds), as the local simulator writes it. None when the URL does not say.
    """
    try:
        query = URL(url, encoded=True).query
    except TypeError, ValueError:
        return None
    signed_at, lifetime = query.get("X-Amz-Date"), query.get("X-Amz-Expires")
    if signed_at and lifetime and lifetime.isdigit():
        try:
            start = datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return start + timedelta(seconds=int(lifetime))
        except OverflowError, ValueError:  # not a date, a digit int() cannot read, or beyond year 9999
            return None
    for key in ("Expires", "expires"):
        value = query.get(key)
        if value and value.isdigit():
            try:
                return datetime.fromtimestamp(int(value), UTC)
            except OverflowError, OSError, ValueError:  # a digit int() cannot read, or beyond any date
                return None
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChektEvent:
    """One event as the integration wants it delivered; `sent_at` is added per attempt."""

    location_id: str
    camera_id: str
    event_id: str
    event_type: EventType
    event_status: EventStatus
    event_time: datetime
    recorder_id: str | None = None
    should_signal_to_monitoring_center: bool = True
    upload_snapshot_count: int = 0
    upload_short_mp4: bool = False
    upload_event_mp4: bool = False
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_request_body(self, sent_at: datetime) -> dict[str, Any]:
        """The JSON body of `POST /partner/v1/events`, field for field as the spec's table says."""
        body: dict[str, Any] = {
            "version": API_VERSION,
            "location_id": self.location_id,
        }
        if self.recorder_id:
            body["recorder_id"] = self.recorder_id
        body |= {
            "camera_id": self.camera_id,
            "event_id": self.event_id,
            "event_type": self.event_type.value,
            "event_status": self.event_status.value,
            "event_time": format_time(self.event_time),
            "sent_at": format_time(sent_at),
            "should_signal_to_monitoring_center": bool(self.should_signal_to_monitoring_center),
            "upload_snapshot_count": int(self.upload_snapshot_count),
            "upload_short_mp4": bool(self.upload_short_mp4),
            "upload_event_mp4": bool(self.upload_event_mp4),
            "payload": dict(self.payload),
        }
        return body


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where one media file goes (a pre-signed URL) and whom to tell afterwards (the callback URL).

    Both URLs carry credentials (a signature, an access token): never log them.
    """

    kind: MediaKind
    upload_put_url: str = field(repr=False)
    callback_put_url: str = field(repr=False)
    seq: int = 0

    @property
    def expires_at(self) -> datetime | None:
        """When the pre-signed upload URL stops working, if the URL says so."""
        return url_expiry(self.upload_put_url)


@dataclass(frozen=True, slots=True)
class EventUploads:
    """The upload targets of one accepted event."""

    snapshots: tuple[UploadTarget, ...] = ()
    short_mp4: UploadTarget | None = None
    event_mp4: UploadTarget | None = None

    def all(self) -> tuple[UploadTarget, ...]:
        """Every target, snapshots first."""
        clips = tuple(target for target in (self.short_mp4, self.event_mp4) if target is not None)
        return self.snapshots + clips


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """The cloud's 201 reply to an event."""

    event_id: str
    response_id: str
    status: DeliveryStatus
    reason: str | None
    uploads: EventUploads

    @property
    def accepted(self) -> bool:
        """True when the cloud took the event (and wants its media)."""
        return self.status is DeliveryStatus.ACCEPTED
