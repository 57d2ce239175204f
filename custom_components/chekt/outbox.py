"""The outbox: every event the rules or the action produce is delivered from here, with its snapshots.

- Durable: each event is kept with Home Assistant's `Store` from the moment it is decided until its last upload
  is confirmed, and its snapshots are kept on disk (media.py) when they are still waiting as the record is saved,
  so a restart or a long outage loses nothing.
- Prompt: the first attempt leaves at once; persisting never delays it.
- Ordered: the events of one source (a mapped camera or panel) go out one after another, so an `inactive` never
  overtakes its `active`; different sources do not wait for each other, within a bound on concurrent requests.
- Exactly once, as far as CHeKT can tell: an event keeps its `event_id` (and `Idempotency-Key`) and its body on
  every retry. Failures that may pass (network, timeouts, 5xx, 429) are retried with exponential backoff and
  jitter, honouring Retry-After; while the cloud fails, one request probes it and the others wait.
- Refusals (400/403/404) are recorded, logged once with the cloud's message and not retried.
- Clips (clips.py) start recording when their event is submitted; an alarm's `inactive` ends its event clip.
  Each is kept on disk beside the snapshots, and uploaded once the event is accepted and the clip is done.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import math
import random
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.json import json_bytes, json_fragment

from .api import (
    ChektAuthError,
    ChektClient,
    ChektConnectionError,
    ChektError,
    ChektEvent,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    EventReceipt,
    MediaKind,
    UploadTarget,
)
from .clips import ClipRecorder, ClipSettings
from .clock import Clock
from .const import LOGGER
from .media import MediaFile, MediaStore, NewFile, SnapshotSeries, TaskStarter, WriteResult
from .outgoing import OutgoingEvent, new_event_id
from .repairs import DeliveryIssues
from .store import SAVE_DELAY, OutboxStore, Record, RecordBook, snapshot_file_name

# How long stopping waits for the snapshots still only in memory to be written to disk: one batch, normally
# milliseconds; generous for a slow SD card, and well within what Home Assistant allows a stop (100 s).
WRITE_WAIT_ON_STOP = 20
# How soon the entities show a change of the outbox's state (they are written at most this often), and how
# late at the latest while events are being sent.
STATE_REFRESH = 0.25
STATE_REFRESH_LATEST = 1.0
# Backoff doubles per failure up to `max_delay`; beyond this many doublings it has long reached it.
MAX_BACKOFF_EXPONENT = 64


def _snapshot_files(record: Record) -> list[str]:
    """The names the snapshots of `record` have on disk (those that were written)."""
    return [snapshot_file_name(record.event_id, seq) for seq in range(record.event.snapshot_count)]


class Outcome:
    """How an event's delivery ended, as the action reports it."""

    ACCEPTED = "accepted"
    DISCARDED = "discarded"
    QUEUED = "queued"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for failures that may pass. The defaults suit a home's internet connection."""

    initial_delay: float = 1.0
    max_delay: float = 120.0
    max_concurrent_requests: int = 8

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` failures in a row: Retry-After when given, else exponential."""
        if retry_after is not None:
            return retry_after + random.uniform(0, self.initial_delay)  # noqa: S311 -- jitter, not secrecy
        # The exponent is capped: after about a thousand failures (a day's outage) 2**failures overflows a float.
        ceiling = min(self.max_delay, self.initial_delay * 2 ** min(failures, MAX_BACKOFF_EXPONENT))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Bounds of the outbox and the thresholds of what it reports."""

    max_events: int = 10_000
    media_budget_bytes: int = 200 * 1024 * 1024
    late_after: timedelta = timedelta(minutes=5)
    # A failure that the next attempt fixes is no outage: the cloud counts as unreachable only after this long.
    unreachable_after: timedelta = timedelta(seconds=10)
    failing_after: timedelta = timedelta(minutes=15)
    rejections_before_issue: int = 3
    # Pre-signed URLs that do not say when they expire are assumed to live this long.
    default_url_lifetime: timedelta = timedelta(minutes=15)
    # Stop retrying an upload this long before its URL expires: a request started later would fail anyway.
    upload_margin: timedelta = timedelta(seconds=5)
    # A snapshot goes to disk only if it is still waiting for its upload this long after it was taken: as long
    # as the record that refers to it takes to be saved (`store.SAVE_DELAY`), so it is never less durable than
    # its event. With the cloud reachable a snapshot is uploaded from memory first and never touches the disk
    # (no write and delete per picture: no load on the event loop's executor, no wear of an SD card).
    snapshot_write_delay: float = SAVE_DELAY
    # Events that waited (a backlog after an outage or a restart) go out no further ahead of their media than
    # this many accepted events still uploading: a drain of thousands does not hold thousands of uploads at
    # once (memory), and each event's pictures follow it closely. An event counts as waiting once it is this
    # old unsent; a live alarm leaves within milliseconds and never waits for media.
    uploads_ahead_of_backlog: int = 256
    backlog_after: timedelta = timedelta(seconds=2)
    # Media that make no progress (uploads failing while events are taken) hold nothing: once a held event has
    # waited this long without an upload finishing, events go out regardless until uploads progress again.
    media_stalled_after: timedelta = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What `submit` hands back: the event's id and, when asked for, a future of its (status, reason)."""

    event_id: str
    outcome: asyncio.Future[tuple[str, str | None]] | None = field(default=None, repr=False)


@dataclass(slots=True)
class OutboxState:
    """What the entities show."""

    last_event_time: datetime | None = None
    last_event_type: str | None = None
    last_status: str | None = None
    last_reason: str | None = None
    events_sent: int = 0
    backlog: int = 0
    pending_uploads: int = 0
    cloud_reachable: bool | None = None
    last_by_source: dict[str, tuple[datetime, str, str | None]] = field(default_factory=dict)


class CloudGate:
    """The shared view of the cloud's health. While it fails, one request probes it and the rest wait."""

    def __init__(self, clock: Clock, retry: RetryPolicy) -> None:
        """Start healthy."""
        self._clock = clock
        self._retry = retry
        self._failures = 0
        self._open_at = 0.0
        self._closed_at = 0.0
        self._probing = False
        self._changed = asyncio.Event()

    async def wait(self) -> None:
        """Return when a request may go: at once while healthy; as the single probe, after the backoff."""
        while self._failures or self._clock.monotonic() < self._open_at:
            delay = self._open_at - self._clock.monotonic()
            if delay > 0:
                await self._clock.sleep(delay)
            elif not self._failures:
                return
            elif not self._probing:
                self._probing = True
                return
            else:
                await self._changed.wait()

    def succeeded(self) -> None:
        """A request got an answer: everyone may go."""
        self._failures = 0
        self._release()

    def failed(self, started_at: float, retry_after: float | None = None) -> None:
        """A request that started at `started_at` failed; requests already in flight count as one failure."""
        if not self._failures or started_at >= self._closed_at or retry_after is not None:
            now = self._clock.monotonic()
            self._open_at = max(self._open_at, now + self._retry.delay(self._failures, retry_after))
            self._closed_at = now
            self._failures += 1
        self._release()

    def pass_probe(self) -> None:
        """The request that was to probe will not be sent: the next waiting one probes instead."""
        self._release()

    def _release(self) -> None:
        self._probing = False
        self._changed.set()
        self._changed = asyncio.Event()


class Outbox:
    """Takes events synchronously (`submit`) and delivers them in the background, durably."""

    def __init__(
        self,
        hass: HomeAssistant,
        client: ChektClient,
        *,
        store: OutboxStore,
        media: MediaStore,
        issues: DeliveryIssues,
        start_task: TaskStarter,
        snapshot_interval: float,
        clock: Clock | None = None,
        limits: OutboxLimits | None = None,
        retry: RetryPolicy | None = None,
        on_auth_failed: Callable[[], None] | None = None,
        clip_settings: ClipSettings | None = None,
    ) -> None:
        """Nothing runs until `async_start`."""
        self._hass = hass
        self._client = client
        self._store = store
        self._media = media
        self._issues = issues
        self._start_task = start_task
        self._snapshot_interval = snapshot_interval
        self._clock = clock or Clock()
        self._limits = limits or OutboxLimits()
        self._retry = retry or RetryPolicy()
        self._on_auth_failed = on_auth_failed
        self._gate = CloudGate(self._clock, self._retry)
        self._requests = asyncio.Semaphore(self._retry.max_concurrent_requests)
        self._records = RecordBook()
        # Each record's stored form as JSON, in the order the records came; None when it changed since the last
        # save. A record is serialized again when the store writes (not on every change), and only if it changed:
        # saving a large backlog joins ready JSON instead of encoding every record in the event loop each time.
        self._serialized: dict[str, json_fragment | None] = {}
        self._queues: dict[str, deque[str]] = {}  # each source's waiting events (their ids), in order
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._series: dict[str, SnapshotSeries] = {}
        self._images: dict[tuple[str, int], bytes] = {}
        # Snapshots kept in memory only, oldest first, with the loop time at which they go to disk if still wanted
        # then (`snapshot_write_delay`); one timer for the oldest. Those due wait in `_to_write` for the writer.
        self._unwritten: deque[tuple[float, str, int]] = deque()
        self._write_timer: asyncio.TimerHandle | None = None
        self._to_write: dict[tuple[str, int], None] = {}  # (event id, seq), in the order they were due
        self._writer: asyncio.Task[None] | None = None
        self._in_flight: set[str] = set()
        # Sources whose next event (one that waited) waits for the uploads to catch up: see `_let_media_catch_up`.
        self._behind_media: deque[asyncio.Future[None]] = deque()
        self._media_stalled = False
        self._outcomes: dict[str, asyncio.Future[tuple[str, str | None]]] = {}
        self._listeners: list[CALLBACK_TYPE] = []
        self._source_listeners: dict[str, list[CALLBACK_TYPE]] = {}
        # Listeners hear of changes together, a moment later: see `_changed`.
        self._refresh: asyncio.TimerHandle | None = None
        self._refresh_by: float | None = None  # loop time by which the listeners must hear of a change
        self._refresh_waits_for_sends = False
        self._changed_sources: set[str] = set()
        # What `_changed` reports, kept up to date record by record (`_tally`) instead of counted on each change.
        self._tally: dict[str, tuple[int, int]] = {}
        self._waiting = 0
        self._pending_uploads = 0
        self._failing_since: float | None = None
        self._failing_reported = False
        self._rejections = 0
        self._dropped_media = 0
        self._dropped_events = 0
        self._reauth_requested = False
        self._stopped = False
        self.state = OutboxState()
        # What the forwarding rules have told CHeKT (open alarms, arming, troubles): saved with the events, so
        # that the state the monitoring center sees and the events that change it survive a restart together.
        self.reported: Callable[[], dict[str, Any] | None] = lambda: None
        self.restored_reported: dict[str, Any] | None = None
        self._clips = ClipRecorder(
            hass, media, clip_settings or ClipSettings(), start_task=start_task, on_clip=self._keep_clip
        )

    # Life cycle -----------------------------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Load the stored backlog and start delivering it."""
        stored = await self._store.async_load()
        self.state.events_sent = stored.events_sent
        self.restored_reported = stored.reported
        await self._media.async_load(
            keep={name for record in stored.records for name in (*_snapshot_files(record), *record.clips.values())}
        )
        await self._clips.async_start()
        for record in stored.records:
            record.clips = {kind: name for kind, name in record.clips.items() if self._media.has(name)}
            self._add(record)
        if stored.records:
            LOGGER.info("Delivering %d events kept in the CHeKT outbox", len(stored.records))
        self._changed()

    async def async_stop(self) -> None:
        """Save everything and stop (unload). The entry cancels the background tasks.

        Snapshots still being written are waited for (briefly), so the pictures of the moment are kept; clips
        being recorded end here and keep what they captured. The repair issues go: they describe this outbox's
        view, and the next one raises them again if need be.
        """
        self._stopped = True
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        self._refresh_by = None
        for series in self._series.values():
            series.cancel()
        await self._clips.async_stop()
        await self.async_keep_media_now()
        self._issues.clear_all()
        await self._store.async_save_now(self._data())

    async def async_keep_media_now(self) -> None:
        """Write every snapshot still only in memory (Home Assistant is stopping), and wait for that.

        Home Assistant cancels background tasks before it says it stops, the writer among them: what it had not
        written yet is still in `_to_write`, and a new writer takes it.
        """
        self._write_due(until=math.inf)
        self._start_writer()
        if (writer := self._writer) is None or writer.done():
            return
        await asyncio.wait([writer], timeout=WRITE_WAIT_ON_STOP)
        if self._to_write:
            LOGGER.warning(
                "Could not write %d snapshots to disk within %g s; they are lost if Home Assistant stops now",
                len(self._to_write),
                WRITE_WAIT_ON_STOP,
            )

    @property
    def writing_snapshots(self) -> bool:
        """Whether snapshots are due to be written, or being written, to disk."""
        return bool(self._to_write) or (self._writer is not None and not self._writer.done())

    # Intake ---------------------------------------------------------------------------------------------------

    @callback
    def submit(self, event: OutgoingEvent, *, with_outcome: bool = False) -> Delivery:
        """Queue `event` and start delivering it now; returns at once, without waiting on network or disk.

        `with_outcome` when the caller will wait for the cloud's answer (the action); the forwarding rules do
        not, and a backlog of thousands of events need not hold a future each.
        """
        record = Record(event_id=new_event_id(), event=event, created_at=self._clock.now())
        outcome: asyncio.Future[tuple[str, str | None]] | None = None
        if with_outcome:
            outcome = self._outcomes[record.event_id] = self._hass.loop.create_future()
        self._add(record)
        self._clips.on_event(record.event_id, event)
        if event.snapshot_count and event.camera_entity_id:
            # The first snapshot is taken now, in parallel with the request, never after the reply.
            series = SnapshotSeries(
                self._hass,
                event.camera_entity_id,
                event.snapshot_count,
                self._snapshot_interval,
                start_task=self._start_task,
                on_image=lambda seq, image: self._keep_image(record.event_id, seq, image),
            )
            self._series[record.event_id] = series
            # Once every snapshot has settled the series has nothing more to say: a backlog need not keep it.
            series.when_done(lambda: self._series_done(record.event_id, series))
        self._enforce_event_limit()
        self._changed()
        return Delivery(record.event_id, outcome)

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE, source: str | None = None) -> CALLBACK_TYPE:
        """Call `listener` whenever `state` changes; returns the function that removes it.

        With `source`, only when `state.last_by_source[source]` changes.
        """
        listeners = self._listeners if source is None else self._source_listeners.setdefault(source, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    def _add(self, record: Record) -> None:
        self._records[record.event_id] = record
        self._touch(record)
        if record.accepted:
            self._start_task(self._upload_media(record), f"chekt media of {record.event_id}")
            return
        source = record.event.source
        queue = self._queues.setdefault(source, deque())
        queue.append(record.event_id)
        if len(queue) > 1:
            self._park(record)  # behind another event of its source: it waits, as its stored form
        if source not in self._workers:
            self._workers[source] = self._start_task(self._run_source(source), f"chekt delivery for {source}")

    # Sending events -------------------------------------------------------------------------------------------

    async def _run_source(self, source: str) -> None:
        queue = self._queues[source]
        try:
            while queue and not self._stopped:
                event_id = queue[0]
                if (record := self._records.get(event_id)) is None:
                    queue.popleft()  # dropped by the outbox's limit
                    continue
                await self._let_media_catch_up(record)
                receipt = await self._send_until_settled(record)
                if queue and queue[0] == event_id:
                    queue.popleft()
                if event_id not in self._records:
                    continue  # dropped by the outbox's limit meanwhile
                if receipt is not None and receipt.accepted and receipt.uploads.all():
                    self._accept(record, receipt)
                else:
                    self._finish(record)
        finally:
            self._workers.pop(source, None)

    @property
    def _uploading(self) -> int:
        """Accepted events whose uploads are not over (every record is either waiting or uploading)."""
        return len(self._records) - self._waiting

    async def _let_media_catch_up(self, record: Record) -> None:
        """Hold an event that waited while `uploads_ahead_of_backlog` accepted events are still uploading.

        Without this, a drain sends every event first (one request each) and the uploads (two requests each)
        trail behind: thousands of accepted events, each with its upload task, at once. Woken one at a time, as
        uploads finish, so a large drain costs no crowd of wake-ups.
        """
        limits = self._limits
        while (
            not self._media_stalled
            and self._uploading >= limits.uploads_ahead_of_backlog
            and self._clock.now() - record.created_at >= limits.backlog_after
        ):
            waiter = self._hass.loop.create_future()
            self._behind_media.append(waiter)
            try:
                await asyncio.wait([waiter], timeout=limits.media_stalled_after.total_seconds())
            finally:
                if not waiter.done():
                    waiter.cancel()
            if waiter.cancelled():  # no upload finished meanwhile: the media are stuck, the events are not
                LOGGER.debug("Uploads to CHeKT make no progress; events that waited no longer wait for them")
                self._media_stalled = True
                self._wake_behind_media(everyone=True)

    def _wake_behind_media(self, *, everyone: bool = False) -> None:
        while self._behind_media and (everyone or self._uploading < self._limits.uploads_ahead_of_backlog):
            if not (waiter := self._behind_media.popleft()).done():
                waiter.set_result(None)
                if not everyone:
                    return

    async def _send_until_settled(self, record: Record) -> EventReceipt | None:
        """Send until the cloud accepts, discards or refuses the event. Returns the receipt, if any."""
        while True:
            await self._gate.wait()
            if record.event_id not in self._records:
                self._gate.pass_probe()  # dropped by the outbox's limit while it waited: let another probe
                return None
            started_at = self._clock.monotonic()
            try:
                receipt = await self._attempt(record)
            except ChektRequestRejectedError as err:
                self._gate.succeeded()
                self.report_reachability(reachable=True)
                return self._refused(record, err)
            except ChektError as err:
                self._failed(err, started_at)
                continue
            self._gate.succeeded()
            self._delivered(record, receipt)
            return receipt

    async def _attempt(self, record: Record) -> EventReceipt:
        record.attempts += 1
        payload = record.sent_payload if record.sent_payload is not None else self._payload_for(record)
        request = record.event.to_chekt_event(record.event_id, payload)
        self._in_flight.add(record.event_id)
        try:
            return await self._send(record, request, payload)
        finally:
            self._in_flight.discard(record.event_id)
            if self._refresh_waits_for_sends and not self._in_flight:
                self._refresh_listeners()

    async def _send(self, record: Record, request: ChektEvent, payload: dict[str, Any]) -> EventReceipt:
        async with self._requests:
            # A token that cannot be had means the event never left: its body may still change (late flag).
            await self._client.authenticate()
            try:
                return await self._client.send_event(request, sent_at=self._clock.now())
            except ChektError as err:
                self._freeze_if_sent(record, payload, err)
                raise

    def _freeze_if_sent(self, record: Record, payload: dict[str, Any], err: ChektError) -> None:
        """Keep the body of a request the cloud may have processed: every retry must carry the very same one."""
        if isinstance(err, ChektRateLimitedError | ChektAuthError):
            return
        if isinstance(err, ChektConnectionError) and not err.request_sent:
            return
        self._freeze(record, payload)

    def _payload_for(self, record: Record) -> dict[str, Any]:
        payload = dict(record.event.payload)
        age = self._clock.now() - record.event.event_time
        if age > self._limits.late_after:
            payload |= {"late": True, "delay_seconds": int(age.total_seconds())}
        return payload

    def _freeze(self, record: Record, payload: dict[str, Any]) -> None:
        if record.sent_payload is None:
            record.sent_payload = payload
            self._touch(record)

    def _refused(self, record: Record, err: ChektRequestRejectedError) -> EventReceipt | None:
        if err.status == 409 and record.sent_payload is not None:
            # Same Idempotency-Key, other body: the cloud holds an earlier attempt of this very event.
            LOGGER.info("CHeKT already has event %s; not sending it again", record.event_id)
            self._settle(record, Outcome.ACCEPTED, "already received")
            return None
        LOGGER.error(
            "CHeKT refused %s/%s event %s for camera %s: %s",
            record.event.event_type,
            record.event.event_status,
            record.event_id,
            record.event.camera_id,
            err.cloud_message,
        )
        self._rejections += 1
        if self._rejections >= self._limits.rejections_before_issue:
            self._issues.events_rejected(self._rejections, err.cloud_message)
        self._settle(record, Outcome.REJECTED, err.cloud_message)
        return None

    def _failed(self, err: ChektError, started_at: float) -> None:
        retry_after = err.retry_after if isinstance(err, ChektRateLimitedError) else None
        if isinstance(err, ChektAuthError):
            if not self._reauth_requested and self._on_auth_failed is not None:
                self._reauth_requested = True
                self._on_auth_failed()
            retry_after = self._retry.max_delay
        self._gate.failed(started_at, retry_after)
        self._report_unreachable(str(err))
        LOGGER.debug("Sending to CHeKT failed (%s); events are kept and retried", err)

    def _delivered(self, record: Record, receipt: EventReceipt) -> None:
        self.report_reachability(reachable=True)
        if receipt.accepted and self._rejections:
            self._rejections = 0
            self._issues.rejections_over()
        self.state.events_sent += 1
        self._settle(record, receipt.status.value, receipt.reason)

    def _settle(self, record: Record, status: str, reason: str | None) -> None:
        if (outcome := self._outcomes.pop(record.event_id, None)) is not None and not outcome.done():
            outcome.set_result((status, reason))
        now = self._clock.now()
        state = self.state
        state.last_event_time = now
        state.last_event_type = record.event.event_type.value
        state.last_status = status
        state.last_reason = reason
        state.last_by_source[record.event.source] = (now, status, reason)
        self._changed_sources.add(record.event.source)
        self._changed()

    # Uploading media ------------------------------------------------------------------------------------------

    def _accept(self, record: Record, receipt: EventReceipt) -> None:
        record.targets = list(receipt.uploads.all())
        record.accepted_at = self._clock.now()
        self._touch(record)
        self._changed()
        self._start_task(self._upload_media(record), f"chekt media of {record.event_id}")

    async def _upload_media(self, record: Record) -> None:
        targets = list(record.targets or ())
        await asyncio.gather(*(self._upload_target(record, target) for target in targets))
        self._finish(record)

    async def _upload_target(self, record: Record, target: UploadTarget) -> None:
        if target.kind is not MediaKind.SNAPSHOT:
            if (clip := await self._clip(record, target)) is None:
                LOGGER.debug("No %s is recorded for event %s", target.kind, record.event_id)
            else:
                await self._upload_and_confirm(record, target, clip)
        elif (image := await self._image(record, target.seq)) is None:
            LOGGER.warning("Snapshot %d of event %s is missing; nothing to upload", target.seq, record.event_id)
        else:
            await self._upload_and_confirm(record, target, image)
        self._target_done(record, target)

    async def _upload_and_confirm(self, record: Record, target: UploadTarget, data: bytes) -> None:
        deadline = self._url_deadline(record, target)
        if await self._retry_until(lambda: self._client.upload(target, data), deadline, record, target):
            # The callback may outlive the upload URL; give it time of its own.
            callback_deadline = max(deadline, self._clock.now() + self._limits.default_url_lifetime)
            await self._retry_until(lambda: self._client.confirm_upload(target), callback_deadline, record, target)

    async def _clip(self, record: Record, target: UploadTarget) -> bytes | None:
        """The clip of `target`'s kind, once recorded (ended in time for its upload URL), or None."""
        if target.kind not in record.clips:
            seconds_left = (self._url_deadline(record, target) - self._clock.now()).total_seconds()
            await self._clips.async_clip(record.event_id, target.kind, seconds_left)
        if (name := record.clips.get(target.kind)) is None:
            return None
        return await self._media.async_read(name)

    async def _image(self, record: Record, seq: int) -> bytes | None:
        if (series := self._series.get(record.event_id)) is not None:
            await series.settled(seq)
        if (image := self._images.get((record.event_id, seq))) is not None:
            return image
        return await self._media.async_read(snapshot_file_name(record.event_id, seq))

    def _url_deadline(self, record: Record, target: UploadTarget) -> datetime:
        expires_at = target.expires_at
        if expires_at is None:
            expires_at = (record.accepted_at or self._clock.now()) + self._limits.default_url_lifetime
        return expires_at - self._limits.upload_margin

    async def _retry_until(
        self,
        request: Callable[[], Awaitable[None]],
        deadline: datetime,
        record: Record,
        target: UploadTarget,
    ) -> bool:
        failures = 0
        while self._clock.now() < deadline:
            try:
                async with self._requests:
                    await request()
            except ChektRequestRejectedError as err:
                LOGGER.warning(
                    "Media %s %d of event %s was refused (%s); dropped",
                    target.kind,
                    target.seq,
                    record.event_id,
                    err.cloud_message,
                )
                return False
            except ChektError as err:
                delay = self._retry.delay(failures)
                failures += 1
                LOGGER.debug("Media %s %d of event %s failed: %s", target.kind, target.seq, record.event_id, err)
                await self._clock.sleep(min(delay, max(0.0, (deadline - self._clock.now()).total_seconds())))
            else:
                return True
        LOGGER.warning(
            "The upload URL of %s %d of event %s has expired; the media is dropped",
            target.kind,
            target.seq,
            record.event_id,
        )
        return False

    def _target_done(self, record: Record, target: UploadTarget) -> None:
        if record.targets is not None and target in record.targets:
            record.targets.remove(target)
        if target.kind is MediaKind.SNAPSHOT:
            self._forget_image(record, target.seq)
        else:
            self._forget_clip(record, target.kind)
        self._touch(record)
        self._changed()

    # Keeping snapshots ----------------------------------------------------------------------------------------

    def _series_done(self, event_id: str, series: SnapshotSeries) -> None:
        if self._series.get(event_id) is series:
            del self._series[event_id]

    def _keep_image(self, event_id: str, seq: int, image: bytes | None) -> None:
        if image is None or self._stopped:
            return
        self._images[(event_id, seq)] = image
        loop = self._hass.loop
        self._unwritten.append((loop.time() + self._limits.snapshot_write_delay, event_id, seq))
        if self._write_timer is None:
            self._write_due()

    @callback
    def _write_due(self, until: float | None = None) -> None:
        """Write the snapshots due by `until` (all of them on stop) that are still to be uploaded."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        loop = self._hass.loop
        until = loop.time() if until is None else until
        while self._unwritten and self._unwritten[0][0] <= until:
            _, event_id, seq = self._unwritten.popleft()
            if self._image_wanted(event_id, seq):
                self._to_write[(event_id, seq)] = None
            else:
                self._images.pop((event_id, seq), None)  # uploaded from memory (or given up): never written
        self._start_writer()
        if self._unwritten and not self._stopped:
            due = self._unwritten[0][0]
            self._write_timer = loop.call_at(due, self._write_due, due)

    def _start_writer(self) -> None:
        """Run the writer if there is something to write and none runs (or the one that ran was cancelled)."""
        writer = self._writer
        if self._to_write and (writer is None or writer.done() or writer.cancelling()):
            self._writer = self._start_task(self._write_snapshots(), "chekt snapshot files")

    async def _write_snapshots(self) -> None:
        """Write what is due, a batch at a time (a burst of alarms is one executor job, not hundreds).

        A snapshot leaves `_to_write` only once it is on disk (or no longer wanted): if Home Assistant cancels
        this task as it stops, `async_keep_media_now` starts another that writes what this one had not finished.
        Snapshots are known by their event's id, not its record: the record may be parked meanwhile.
        """
        while batch := self._next_batch():
            result = await self._media.async_write(
                [NewFile(event_id, snapshot_file_name(event_id, seq), image) for event_id, seq, image in batch]
            )
            self._kept_on_disk(batch, result)

    def _next_batch(self) -> list[tuple[str, int, bytes]]:
        batch: list[tuple[str, int, bytes]] = []
        for event_id, seq in list(self._to_write):
            image = self._images.get((event_id, seq))
            if image is None or not self._image_wanted(event_id, seq):
                del self._to_write[(event_id, seq)]
                self._images.pop((event_id, seq), None)
            else:
                batch.append((event_id, seq, image))
        return batch

    def _kept_on_disk(self, batch: list[tuple[str, int, bytes]], result: WriteResult) -> None:
        unwanted: list[str] = []
        for event_id, seq, _ in batch:
            key = (event_id, seq)
            self._to_write.pop(key, None)
            name = snapshot_file_name(event_id, seq)
            if (err := result.failed.get(name)) is not None:
                # The picture stays in memory: it is still uploaded, it only would not survive a restart.
                LOGGER.warning("Could not keep snapshot %d of event %s on disk: %s", seq, event_id, err)
                continue
            self._images.pop(key, None)
            if not self._image_wanted(event_id, seq):
                unwanted.append(name)  # uploaded from memory, or given up, while it was being written
        if unwanted:
            self._start_task(self._media.async_delete(unwanted), "chekt delete uploaded snapshots")
        self._drop_evicted(result.evicted)

    def _image_wanted(self, event_id: str, seq: int) -> bool:
        """Whether snapshot `seq` of the event is still to be uploaded (and so worth keeping on disk)."""
        records = self._records
        if event_id not in records:
            return False
        if records.is_parked(event_id):
            return True  # only waiting records are parked
        record = records[event_id]
        return not record.accepted or self._has_target(record, seq)

    def _has_target(self, record: Record, seq: int) -> bool:
        return any(t.kind is MediaKind.SNAPSHOT and t.seq == seq for t in record.targets or ())

    def _forget_image(self, record: Record, seq: int) -> None:
        self._images.pop((record.event_id, seq), None)
        if self._media.has(name := snapshot_file_name(record.event_id, seq)):
            self._start_task(self._media.async_delete([name]), f"chekt delete {name}")

    # Keeping clips (recorded by clips.py straight into the media folder) -------------------------------------

    def _keep_clip(self, event_id: str, kind: MediaKind, name: str, evicted: list[MediaFile]) -> None:
        record = self._records.get(event_id)
        if record is None or (record.accepted and not any(t.kind is kind for t in record.targets or ())):
            self._start_task(self._media.async_delete([name]), f"chekt delete {name}")  # no longer wanted
        else:
            record.clips[kind] = name
            self._touch(record)
        self._drop_evicted(evicted)

    def _forget_clip(self, record: Record, kind: MediaKind) -> None:
        if (name := record.clips.pop(kind, None)) is not None:
            self._start_task(self._media.async_delete([name]), f"chekt delete {name}")

    def _drop_evicted(self, evicted: list[MediaFile]) -> None:
        for file in evicted:
            # A record names its clips; its snapshots are whichever of its files the folder has.
            if file.name.endswith(".mp4") and (owner := self._records.get(file.event_id)) is not None:
                owner.clips = {kind: name for kind, name in owner.clips.items() if name != file.name}
                self._touch(owner)
        if evicted:
            self._dropped_media += len(evicted)
            LOGGER.warning(
                "The CHeKT outbox is over its media budget; dropped the %d oldest snapshots or clips", len(evicted)
            )
            self._issues.outbox_full(self._dropped_media, self._dropped_events)

    # Bounds, bookkeeping and state ----------------------------------------------------------------------------

    def _enforce_event_limit(self) -> None:
        """Over the limit, give up the oldest media first (delivered events), then, last, the oldest events.

        An event being sent right now is never dropped: the cloud may be taking it this very moment.
        """
        excess = len(self._records) - self._limits.max_events
        if excess <= 0:
            return
        records = self._records
        # A parked record is waiting (only those are parked); a live one says, without being thawed.
        delivered = [event_id for event_id in records if not records.is_parked(event_id) and records[event_id].accepted]
        taken = set(delivered) | self._in_flight
        waiting = [event_id for event_id in records if event_id not in taken]
        for event_id in [*delivered, *waiting][:excess]:
            record = records[event_id]
            if not record.accepted:
                self._dropped_events += 1
                LOGGER.error(
                    "The CHeKT outbox is full (%d events); dropped the oldest event %s",
                    self._limits.max_events,
                    record.event_id,
                )
                queue = self._queues.get(record.event.source)
                if queue and event_id in queue and queue[0] != event_id:
                    queue.remove(event_id)
            else:
                self._dropped_media += len(record.targets or ())
            self._finish(record)
        self._issues.outbox_full(self._dropped_media, self._dropped_events)

    def _finish(self, record: Record) -> None:
        if not self._records.pop(record.event_id):
            return
        self._serialized.pop(record.event_id, None)
        self._count(record.event_id, (0, 0))
        if record.accepted:
            self._media_stalled = False
            self._wake_behind_media()
        if (series := self._series.pop(record.event_id, None)) is not None:
            series.cancel()
        for seq in range(record.event.snapshot_count):
            self._forget_image(record, seq)
        for kind in list(record.clips):
            self._forget_clip(record, kind)
        self._clips.discard(record.event_id)
        if (outcome := self._outcomes.pop(record.event_id, None)) is not None and not outcome.done():
            outcome.set_result((Outcome.QUEUED, None))
        self._save()
        self._changed()
        if not self._records and (self._dropped_media or self._dropped_events):
            self._dropped_media = self._dropped_events = 0
            self._issues.outbox_drained()

    def _touch(self, record: Record) -> None:
        if record.event_id in self._records:
            self._serialized[record.event_id] = None
            self._count(record.event_id, (0 if record.accepted else 1, len(record.targets or ())))
            self._save()

    def _count(self, event_id: str, tally: tuple[int, int]) -> None:
        """Note what one record adds to the backlog and the pending uploads (every change of it is touched)."""
        waiting, uploads = self._tally.pop(event_id, (0, 0))
        if tally != (0, 0):
            self._tally[event_id] = tally
        self._waiting += tally[0] - waiting
        self._pending_uploads += tally[1] - uploads

    def _save(self) -> None:
        if not self._stopped:
            self._store.schedule_save(self._data)

    def _data(self) -> dict[str, Any]:
        serialized = self._serialized
        fresh: dict[str, bytes] = {}
        for event_id in [event_id for event_id, data in serialized.items() if data is None]:
            fresh[event_id] = json_bytes(self._records[event_id].to_dict())
            serialized[event_id] = json_fragment(fresh[event_id])
        self._park_idle(fresh)
        return {
            "records": list(serialized.values()),
            "events_sent": self.state.events_sent,
            "reported": self.reported() or self.restored_reported,
        }

    def _park_idle(self, fresh: dict[str, bytes]) -> None:
        """Park again the records looked up since they were parked; `fresh` is JSON just made."""
        for record in self._records.live():
            if self._only_waits(record):
                self._park(record, fresh.get(record.event_id))

    def _park(self, record: Record, stored: bytes | None = None) -> None:
        """Keep `record` as its stored JSON (see `RecordBook`): a backlog is not thousands of small objects."""
        if stored is None:
            stored = json_bytes(record.to_dict())
            self._serialized[record.event_id] = json_fragment(stored)
        self._records.park(record, stored)

    def _only_waits(self, record: Record) -> bool:
        """Whether `record` only waits for its turn: neither accepted, nor in flight, nor next of its source.

        The next of each source is held by the source's worker, and accepted records by their uploads; all else
        refers to records by their event id and looks them up (which makes a parked record live again).
        """
        if record.accepted or record.event_id in self._in_flight:
            return False
        queue = self._queues.get(record.event.source)
        return queue is not None and bool(queue) and queue[0] != record.event_id

    def _report_unreachable(self, error: str) -> None:
        now = self._clock.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        failing_for = now - self._failing_since
        if failing_for >= self._limits.unreachable_after.total_seconds():
            self.report_reachability(reachable=False, reason=error)
        if not self._failing_reported and failing_for >= self._limits.failing_after.total_seconds():
            self._failing_reported = True
            self._issues.delivery_failing(int(failing_for // 60), error)

    def report_reachability(self, *, reachable: bool, reason: str | None = None) -> None:
        """Record whether the cloud answered; logs once when it goes away and once when it returns."""
        previous = self.state.cloud_reachable
        if reachable:
            self._failing_since = None
            if self._failing_reported:
                self._failing_reported = False
                self._issues.delivery_recovered()
        if previous == reachable:
            return
        if reachable and previous is False:
            LOGGER.info("The CHeKT cloud is reachable again")
        elif not reachable:
            LOGGER.warning("The CHeKT cloud is unreachable (%s); events are kept and retried", reason)
        self.state.cloud_reachable = reachable
        self._changed()

    @property
    def listeners_behind(self) -> bool:
        """Whether the listeners have yet to hear of a change of `state`."""
        return self._refresh_by is not None

    def _changed(self) -> None:
        """`state` is up to date at once; its listeners (the entities) hear of it a moment later.

        An event changes the state several times (queued, sent, settled, each upload), and a burst of alarms
        hundreds of times in a moment. Writing the entities' states each time would cost Home Assistant more
        than the events themselves (and fill the recorder), and delay the alarms: they are written at most once
        per `STATE_REFRESH`, never inside the state change that raises an alarm, and not while an event is on
        its way out (up to `STATE_REFRESH_LATEST` after the change).
        """
        self.state.backlog = self._waiting
        self.state.pending_uploads = self._pending_uploads
        if self._refresh_by is None and not self._stopped:
            loop = self._hass.loop
            self._refresh_by = loop.time() + STATE_REFRESH_LATEST
            self._refresh = loop.call_later(STATE_REFRESH, self._refresh_listeners)

    @callback
    def _refresh_listeners(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._refresh_by is None:
            return
        loop = self._hass.loop
        if self._in_flight and loop.time() < self._refresh_by:
            self._refresh_waits_for_sends = True  # `_attempt` calls again when the last send is over
            self._refresh = loop.call_at(self._refresh_by, self._refresh_listeners)
            return
        self._refresh_by = None
        self._refresh_waits_for_sends = False
        sources, self._changed_sources = self._changed_sources, set()
        for listener in list(self._listeners):
            listener()
        for source in sources:
            for listener in list(self._source_listeners.get(source, ())):
                listener()
