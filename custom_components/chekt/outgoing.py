"""What the forwarding rules produce and the outbox delivers: one event with everything needed to send it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
import time
from typing import Any

from homeassistant.util import dt as dt_util

from .api import ChektEvent, EventStatus, EventType


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingEvent:
    """An event decided by a rule or the action, before it has an id.

    `source` names the mapping it belongs to (a subentry id): events of one source are delivered in order.
    `camera_entity_id` is where snapshots and clips come from, when the event carries any.
    """

    source: str
    event_type: EventType
    event_status: EventStatus
    event_time: datetime
    location_id: str
    camera_id: str
    recorder_id: str | None = None
    signal_monitoring_center: bool = True
    snapshot_count: int = 0
    upload_short_mp4: bool = False
    upload_event_mp4: bool = False
    camera_entity_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the outbox's storage (the payload is copied, its values are shared)."""
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["event_time"] = self.event_time.isoformat()
        data["payload"] = dict(self.payload)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutgoingEvent:
        """The event stored by `to_dict`."""
        event_time = dt_util.parse_datetime(data["event_time"])
        if event_time is None:
            raise ValueError(f"unreadable event time {data['event_time']!r}")
        return cls(
            **{key: value for key, value in data.items() if key not in {"event_type", "event_status", "event_time"}},
            event_type=EventType(data["event_type"]),
            event_status=EventStatus(data["event_status"]),
            event_time=event_time,
        )

    def to_chekt_event(self, event_id: str, payload: dict[str, Any] | None = None) -> ChektEvent:
        """The client's request object for this event under `event_id`, with `payload` if given."""
        return ChektEvent(
            location_id=self.location_id,
            recorder_id=self.recorder_id,
            camera_id=self.camera_id,
            event_id=event_id,
            event_type=self.event_type,
            event_status=self.event_status,
            event_time=self.event_time,
            should_signal_to_monitoring_center=self.signal_monitoring_center,
            upload_snapshot_count=self.snapshot_count,
            upload_short_mp4=self.upload_short_mp4,
            upload_event_mp4=self.upload_event_mp4,
            payload=self.payload if payload is None else payload,
        )


# `to_dict` reads the fields by name: `dataclasses.asdict` deep-copies every value and costs several times more.
_FIELD_NAMES = tuple(field.name for field in fields(OutgoingEvent))

_previous = 0


def new_event_id() -> str:
    """A new event id: microseconds since the epoch as a string (as in the spec's example), never repeated.

    Two events in the same microsecond, or a clock that steps back, still get distinct, increasing ids.
    """
    global _previous  # noqa: PLW0603 -- one process-wide sequence is the point
    candidate = time.time_ns() // 1000
    _previous = max(candidate, _previous + 1)
    return str(_previous)
