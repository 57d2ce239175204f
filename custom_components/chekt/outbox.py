"""The outbox: every event the rules or the action produce is delivered from here, with its media.

Events of one source (a mapped camera or panel) go out one after another, so an `inactive` never overtakes
its `active`; different sources do not wait for each other. The first attempt leaves at once. Failures that
may pass (network, timeouts, 5xx, 429) are retried with exponential backoff and jitter, under the same
`event_id` and `Idempotency-Key`, so a retry after a lost reply cannot make a second alarm. Requests the
cloud refuses as such
(400/403/404) are recorded and dropped: sending them again would not help.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
import random
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .api import (
    ChektAuthError,
    ChektClient,
    ChektError,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    EventReceipt,
    UploadTarget,
)
from .const import LOGGER
from .media import SnapshotSeries, TaskStarter
from .outgoing import OutgoingEvent, new_event_id


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
    upload_attempts: int = 5

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before attempt `attempt + 1`: the cloud's Retry-After, else exponential with jitter."""
        if retry_after is not None:
            return min(retry_after, self.max_delay * 5) + random.uniform(0, self.initial_delay)  # noqa: S311
        ceiling = min(self.max_delay, self.initial_delay * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 -- jitter, not cryptography


@dataclass(slots=True)
class Delivery:
    """One event on its way: its id is fixed at creation and kept across every retry."""

    event: OutgoingEvent
    event_id: str
    snapshots: SnapshotSeries | None = None
    attempts: int = 0
    outcome: asyncio.Future[tuple[str, str | None]] | None = field(default=None, repr=False)


@dataclass(slots=True)
class OutboxState:
    """What the entities show: the last event, how many were sent, and whether the cloud answers."""

    last_event_time: datetime | None = None
    last_event_type: str | None = None
    last_status: str | None = None
    last_reason: str | None = None
    events_sent: int = 0
    backlog: int = 0
    cloud_reachable: bool | None = None
    last_by_source: dict[str, tuple[datetime, str, str | None]] = field(default_factory=dict)


class Outbox:
    """Takes events synchronously (`submit`) and delivers them in the background."""

    def __init__(
        self,
        hass: HomeAssistant,
        client: ChektClient,
        *,
        start_task: TaskStarter,
        snapshot_interval: float,
        retry: RetryPolicy | None = None,
        on_auth_failed: Callable[[], None] | None = None,
    ) -> None:
        """Nothing runs until the first `submit`."""
        self._hass = hass
        self._client = client
        self._start_task = start_task
        self._snapshot_interval = snapshot_interval
        self._retry = retry or RetryPolicy()
        self._on_auth_failed = on_auth_failed
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._requests = asyncio.Semaphore(self._retry.max_concurrent_requests)
        self._listeners: list[CALLBACK_TYPE] = []
        self._stopped = False
        self.state = OutboxState()

    @callback
    def submit(self, event: OutgoingEvent) -> Delivery:
        """Queue `event` and start delivering it now; returns at once, without touching the network."""
        delivery = Delivery(event=event, event_id=new_event_id(), outcome=self._hass.loop.create_future())
        if event.snapshot_count and event.camera_entity_id:
            # The first snapshot is taken now, in parallel with the request, never after the reply.
            delivery.snapshots = SnapshotSeries(
                self._hass,
                event.camera_entity_id,
                event.snapshot_count,
                self._snapshot_interval,
                self._start_task,
            )
        self._queues.setdefault(event.source, deque()).append(delivery)
        if event.source not in self._workers:
            self._workers[event.source] = self._start_task(
                self._deliver_source(event.source), f"chekt delivery for {event.source}"
            )
        self._set_backlog()
        return delivery

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` whenever `state` changes; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def async_stop(self) -> None:
        """Stop delivering (unload). Background tasks are cancelled by the config entry."""
        self._stopped = True
        for queue in self._queues.values():
            for delivery in queue:
                if delivery.snapshots is not None:
                    delivery.snapshots.cancel()

    async def _deliver_source(self, source: str) -> None:
        queue = self._queues[source]
        try:
            while queue and not self._stopped:
                delivery = queue[0]
                receipt = await self._send_until_settled(delivery)
                queue.popleft()
                self._set_backlog()
                if receipt is not None and receipt.accepted:
                    self._start_task(
                        self._upload_media(delivery, receipt), f"chekt media of {delivery.event_id}"
                    )
                elif delivery.snapshots is not None:
                    delivery.snapshots.cancel()
        finally:
            del self._workers[source]

    async def _send_until_settled(self, delivery: Delivery) -> EventReceipt | None:
        """Send until the cloud accepts, discards or refuses the event. Returns the receipt, if any."""
        while True:
            delivery.attempts += 1
            try:
                async with self._requests:
                    receipt = await self._client.send_event(
                        delivery.event.to_chekt_event(delivery.event_id), sent_at=dt_util.utcnow()
                    )
            except ChektRequestRejectedError as err:
                LOGGER.error(
                    "CHeKT refused %s event %s for camera %s: %s",
                    delivery.event.event_type,
                    delivery.event_id,
                    delivery.event.camera_id,
                    err.cloud_message,
                )
                self._settle(delivery, Outcome.REJECTED, err.cloud_message)
                return None
            except ChektError as err:
                await self._wait_before_retry(delivery, err)
                continue
            self.report_reachability(reachable=True)
            self._settle(delivery, receipt.status.value, receipt.reason)
            return receipt

    async def _wait_before_retry(self, delivery: Delivery, err: ChektError) -> None:
        retry_after = err.retry_after if isinstance(err, ChektRateLimitedError) else None
        if isinstance(err, ChektAuthError):
            if self._on_auth_failed is not None:
                self._on_auth_failed()
        else:
            self.report_reachability(reachable=False, reason=str(err))
        delay = self._retry.delay(delivery.attempts - 1, retry_after)
        LOGGER.debug(
            "Attempt %d of event %s failed (%s); next in %.1f s",
            delivery.attempts,
            delivery.event_id,
            err,
            delay,
        )
        await asyncio.sleep(delay)

    async def _upload_media(self, delivery: Delivery, receipt: EventReceipt) -> None:
        await asyncio.gather(
            *(self._upload_snapshot(delivery, target) for target in receipt.uploads.snapshots)
        )

    async def _upload_snapshot(self, delivery: Delivery, target: UploadTarget) -> None:
        image = await delivery.snapshots.get(target.seq) if delivery.snapshots is not None else None
        if image is None:
            LOGGER.warning("No snapshot %d for event %s: nothing to upload", target.seq, delivery.event_id)
            return
        await self._with_retries(lambda: self._client.upload(target, image), delivery, target, "upload")
        await self._with_retries(lambda: self._client.confirm_upload(target), delivery, target, "callback")

    async def _with_retries(
        self,
        request: Callable[[], Coroutine[Any, Any, None]],
        delivery: Delivery,
        target: UploadTarget,
        what: str,
    ) -> None:
        for attempt in range(self._retry.upload_attempts):
            try:
                async with self._requests:
                    await request()
            except ChektRequestRejectedError as err:
                LOGGER.warning(
                    "The %s %d %s of event %s was refused: %s",
                    target.kind,
                    target.seq,
                    what,
                    delivery.event_id,
                    err.cloud_message,
                )
                return
            except ChektError as err:
                LOGGER.debug("The %s %d %s failed: %s", target.kind, target.seq, what, err)
                await asyncio.sleep(self._retry.delay(attempt))
            else:
                return
        LOGGER.warning(
            "Gave up the %s %d %s of event %s after %d attempts",
            target.kind,
            target.seq,
            what,
            delivery.event_id,
            self._retry.upload_attempts,
        )

    def _settle(self, delivery: Delivery, status: str, reason: str | None) -> None:
        if delivery.outcome is not None and not delivery.outcome.done():
            delivery.outcome.set_result((status, reason))
        state = self.state
        now = dt_util.utcnow()
        state.last_event_time = now
        state.last_event_type = delivery.event.event_type.value
        state.last_status = status
        state.last_reason = reason
        state.last_by_source[delivery.event.source] = (now, status, reason)
        if status != Outcome.REJECTED:
            state.events_sent += 1
        self._notify()

    def report_reachability(self, *, reachable: bool, reason: str | None = None) -> None:
        """Record whether the cloud answered; logs once when it goes away and once when it returns."""
        previous = self.state.cloud_reachable
        if previous == reachable:
            return
        if reachable and previous is False:
            LOGGER.info("The CHeKT cloud is reachable again")
        elif not reachable:
            LOGGER.warning("The CHeKT cloud is unreachable (%s); events are kept and retried", reason)
        self.state.cloud_reachable = reachable
        self._notify()

    def _set_backlog(self) -> None:
        self.state.backlog = sum(len(queue) for queue in self._queues.values())
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
