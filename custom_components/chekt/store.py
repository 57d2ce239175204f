"""The outbox's persistent form: each event not yet fully delivered, kept with Home Assistant's `Store`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.json import json_loads_object

from .api import MediaKind, UploadTarget
from .const import DOMAIN, LOGGER
from .outgoing import OutgoingEvent

STORAGE_VERSION = 1
# Saves are batched: a crash can lose at most this last moment, never a backlog.
SAVE_DELAY = 1.0


def storage_key(entry_id: str) -> str:
    """The `.storage` file of one config entry's outbox."""
    return f"{DOMAIN}.{entry_id}.outbox"


@dataclass(slots=True, kw_only=True)
class Record:
    """One event in the outbox, from the moment it is decided until its last upload is confirmed.

    `targets` is None until the cloud accepts the event; then it lists the uploads still to do.
    `sent_payload` freezes the payload once a request may have reached the cloud, so that every retry carries
    the same body under the same `Idempotency-Key`. `clips` names the clip files by kind (records stored
    before clips existed have none). Snapshots are not named here: snapshot `seq` of an event is kept as
    `snapshot_file_name(event_id, seq)`, and whether it was written is for the media folder to say. So writing
    a picture changes no record (a waiting record need not be made live for it), and a picture written just
    before a crash is still found after it. (Records stored before this kept a `media` map; it is ignored.)
    """

    event_id: str
    event: OutgoingEvent
    created_at: datetime
    attempts: int = 0
    sent_payload: dict[str, Any] | None = None
    targets: list[UploadTarget] | None = None
    accepted_at: datetime | None = None
    clips: dict[MediaKind, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """True once the cloud has accepted the event (only uploads remain)."""
        return self.targets is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "event_id": self.event_id,
            "event": self.event.to_dict(),
            "created_at": self.created_at.isoformat(),
            "attempts": self.attempts,
            "sent_payload": self.sent_payload,
            "targets": None if self.targets is None else [_target_to_dict(t) for t in self.targets],
            "accepted_at": self.accepted_at.isoformat() if self.accepted_at else None,
            "clips": {kind.value: name for kind, name in self.clips.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """The record stored by `to_dict`; raises KeyError, TypeError or ValueError when it is damaged."""
        targets = data.get("targets")
        return cls(
            event_id=data["event_id"],
            event=OutgoingEvent.from_dict(data["event"]),
            created_at=_parse_time(data["created_at"]),
            attempts=int(data.get("attempts", 0)),
            sent_payload=data.get("sent_payload"),
            targets=None if targets is None else [_target_from_dict(t) for t in targets],
            accepted_at=_parse_time(data["accepted_at"]) if data.get("accepted_at") else None,
            clips={MediaKind(kind): name for kind, name in data.get("clips", {}).items()},
        )


def snapshot_file_name(event_id: str, seq: int) -> str:
    """The file name of snapshot `seq` of an event; it starts with the event id, which names its owner."""
    return f"{event_id}_{MediaKind.SNAPSHOT}_{seq}.jpg"


def _target_to_dict(target: UploadTarget) -> dict[str, Any]:
    return {
        "kind": target.kind.value,
        "seq": target.seq,
        "upload_put_url": target.upload_put_url,
        "callback_put_url": target.callback_put_url,
    }


def _target_from_dict(data: dict[str, Any]) -> UploadTarget:
    return UploadTarget(
        MediaKind(data["kind"]),
        upload_put_url=data["upload_put_url"],
        callback_put_url=data["callback_put_url"],
        seq=int(data["seq"]),
    )


def _parse_time(text: str) -> datetime:
    moment = dt_util.parse_datetime(text)
    if moment is None:
        raise ValueError(f"unreadable time {text!r}")
    return moment


class RecordBook:
    """The outbox's records in the order they came, each one live (a `Record`) or parked (its stored JSON).

    A backlog of thousands of events waiting for the cloud need not be thousands of small Python objects each:
    those that only wait are parked as the one block of JSON they are saved as, and made live again (thawed)
    when they are looked up. Small objects left behind by a drain keep the allocator's arenas, and so the
    memory, of Home Assistant; one block per event does not. Looking a record up thaws it: whoever holds a
    `Record` holds the live one, as long as the outbox parks only records nothing refers to (`park`).
    """

    __slots__ = ("_entries", "_live")

    def __init__(self) -> None:
        """Empty."""
        self._entries: dict[str, Record | bytes] = {}
        self._live: dict[str, Record] = {}

    def __len__(self) -> int:
        """How many records there are, live or parked."""
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        """Whether the record of `event_id` is here, live or parked."""
        return event_id in self._entries

    def __iter__(self) -> Iterator[str]:
        """The event ids, oldest first."""
        return iter(self._entries)

    def __getitem__(self, event_id: str) -> Record:
        """The live record of `event_id` (thawed if parked); KeyError when there is none."""
        entry = self._entries[event_id]
        if isinstance(entry, Record):
            return entry
        record = Record.from_dict(json_loads_object(entry))
        self._entries[event_id] = self._live[event_id] = record
        return record

    def __setitem__(self, event_id: str, record: Record) -> None:
        """Add (or replace) a live record."""
        self._entries[event_id] = self._live[event_id] = record

    def get(self, event_id: str) -> Record | None:
        """The live record of `event_id` (thawed if parked), or None."""
        return self[event_id] if event_id in self._entries else None

    def values(self) -> Iterator[Record]:
        """Every record, oldest first, each thawed."""
        return (self[event_id] for event_id in list(self._entries))

    def pop(self, event_id: str) -> bool:
        """Forget the record of `event_id`; whether there was one."""
        self._live.pop(event_id, None)
        return self._entries.pop(event_id, None) is not None

    def is_parked(self, event_id: str) -> bool:
        """Whether the record of `event_id` is kept as its JSON only."""
        return isinstance(self._entries.get(event_id), bytes)

    def live(self) -> list[Record]:
        """The live records, oldest first."""
        return list(self._live.values())

    def park(self, record: Record, stored: bytes) -> None:
        """Keep `record` as `stored`, its JSON (`to_dict`), and let the object go: nothing may refer to it."""
        if self._live.pop(record.event_id, None) is record:
            self._entries[record.event_id] = stored


@dataclass(slots=True)
class StoredOutbox:
    """What `OutboxStore.async_load` returns."""

    records: list[Record]
    events_sent: int = 0
    reported: dict[str, Any] | None = None


class OutboxStore:
    """Reads and writes one entry's outbox; writes are batched and never postponed by a steady stream."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind to the entry's storage file."""
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, storage_key(entry_id))
        self._snapshot: Any = None
        self._save_scheduled = False

    async def async_load(self) -> StoredOutbox:
        """The stored records, oldest first. A damaged record is logged and skipped, never fatal."""
        data = await self._store.async_load() or {}
        records: list[Record] = []
        for item in data.get("records", []):
            try:
                records.append(Record.from_dict(item))
            except (AttributeError, KeyError, TypeError, ValueError) as err:
                LOGGER.error("Skipping a damaged event in the CHeKT outbox: %s", err)
        records.sort(key=lambda record: int(record.event_id) if record.event_id.isdigit() else 0)
        events_sent = data.get("events_sent", 0)
        reported = data.get("reported")
        return StoredOutbox(
            records,
            events_sent if isinstance(events_sent, int) and not isinstance(events_sent, bool) else 0,
            reported if isinstance(reported, dict) else None,
        )

    def schedule_save(self, snapshot: Any) -> None:
        """Save soon; `snapshot()` is called at write time, so the latest state is what gets written."""
        self._snapshot = snapshot
        if self._save_scheduled:
            return
        self._save_scheduled = True
        self._store.async_delay_save(self._data_at_write_time, SAVE_DELAY)

    async def async_save_now(self, data: dict[str, Any]) -> None:
        """Write at once (unload, shutdown)."""
        self._save_scheduled = False
        await self._store.async_save(data)

    async def async_remove(self) -> None:
        """Delete the file (the entry is being removed)."""
        await self._store.async_remove()

    def _data_at_write_time(self) -> dict[str, Any]:
        self._save_scheduled = False
        data: dict[str, Any] = self._snapshot()
        return data
