"""Instruments: arrival times at the simulator, a loop-lag probe, percentiles, resident memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import ctypes
import ctypes.util
from datetime import UTC, datetime
import gc
import math
import os
import re
import sys
import tempfile
import time
from typing import Any
import uuid

import aiohttp

from custom_components.chekt.api.models import format_time
from custom_components.chekt.outgoing import new_event_id
from tests.simulator import CallbackRecord, ChektSimulator, EventRecord, UploadRecord

from .home import ExternalCloud


class Arrivals:
    """Counts what the simulator answers and notes when (time.perf_counter, taken inside its handler)."""

    def __init__(self, sim: ChektSimulator | ExternalCloud) -> None:
        """Listen to `sim` (in this process, or in its own: events only) until `close`."""
        self.events = 0
        self.uploads = 0
        self.callbacks = 0
        self.last_at = 0.0
        self.bodies: dict[str, dict[str, Any]] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []
        self._remove = (
            sim.add_listener(self._heard) if isinstance(sim, ChektSimulator) else sim.add_listener(self._event)
        )

    def close(self) -> None:
        """Stop listening."""
        self._remove()

    def _heard(self, record: EventRecord | UploadRecord | CallbackRecord) -> None:
        now = time.perf_counter()
        if isinstance(record, EventRecord):
            if record.status == 201 and isinstance(record.body, dict):
                self._event(now, record.body)
            return
        if isinstance(record, UploadRecord):
            self.uploads += 1
        elif record.status == 200:
            self.callbacks += 1
        self._arrived(now)

    def _event(self, now: float, body: dict[str, Any]) -> None:
        self.events += 1
        if body.get("event_status") == "active":
            self.bodies[body["camera_id"]] = body
        self._arrived(now)

    def _arrived(self, now: float) -> None:
        self.last_at = now
        for waiter in list(self._waiters):
            predicate, future = waiter
            if predicate() and not future.done():
                future.set_result(now)
                self._waiters.remove(waiter)

    def when(self, predicate: Callable[[], bool]) -> asyncio.Future[float]:
        """A future of the moment `predicate` first holds after an arrival."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def after(self, events: int = 0, callbacks: int = 0) -> asyncio.Future[float]:
        """A future of the moment `events` more events and `callbacks` more callbacks have arrived."""
        events += self.events
        callbacks += self.callbacks
        return self.when(lambda: self.events >= events and self.callbacks >= callbacks)


class BareClient:
    """The floor: the same body POSTed with Home Assistant's own session and the integration's token."""

    def __init__(
        self, session: aiohttp.ClientSession, sim: ChektSimulator | ExternalCloud, token: str, limit: int
    ) -> None:
        """Send through `session`, at most `limit` requests at a time (as the outbox does)."""
        self._session = session
        self._url = sim.base_url + "/partner/v1/events"
        self._token = token
        self._requests = asyncio.Semaphore(limit)

    @staticmethod
    def fresh(body: dict[str, Any]) -> dict[str, Any]:
        """`body` as a new event: a new event id and sending time, everything else the same."""
        return body | {"event_id": new_event_id(), "sent_at": format_time(datetime.now(UTC))}

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one event with the headers the integration's client sends; the reply."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "Idempotency-Key": body["event_id"],
            "x-partner-trace-id": str(uuid.uuid4()),
        }
        async with (
            self._requests,
            self._session.post(self._url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as reply,
        ):
            assert reply.status == 201, reply.status
            result: dict[str, Any] = await reply.json()
            return result

    async def put(self, url: str, data: bytes | None = None) -> None:
        """PUT an upload (JPEG) or a callback (no body)."""
        headers = {"Content-Type": "image/jpeg"} if data is not None else None
        async with (
            self._requests,
            self._session.put(
                url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=60), allow_redirects=False
            ) as reply,
        ):
            await reply.read()
            assert reply.status in (200, 201, 204), reply.status

    async def event_with_media(self, body: dict[str, Any], image: bytes) -> None:
        """POST, then each snapshot's upload followed by its callback, the snapshots side by side."""
        reply = await self.post(body)
        targets = (reply.get("uploads") or {}).get("snapshots") or []

        async def one(target: dict[str, Any]) -> None:
            await self.put(target["upload_put_url"], image)
            await self.put(target["callback_put_url"])

        await asyncio.gather(*(one(target) for target in targets))


class LoopLagProbe:
    """A timer due every `interval` seconds: how late it runs is how long the loop could not run it."""

    def __init__(self, interval: float = 0.001) -> None:
        """Idle until `start`."""
        self.interval = interval
        self.max_lag = 0.0
        self.samples = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """Begin probing (resets the maximum)."""
        self._loop = asyncio.get_running_loop()
        self.max_lag = 0.0
        self.samples = 0
        self._schedule(self._loop.time())

    def stop(self) -> float:
        """Stop probing; the longest lag seen, in seconds."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        return self.max_lag

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.max_lag = max(self.max_lag, now - self._due)
        self.samples += 1
        self._schedule(now)


class GcWatch:
    """The garbage collector's pauses while watching: they stop the loop too, whoever made the garbage."""

    def __init__(self) -> None:
        """Idle until `start`."""
        self.longest = 0.0
        self.full_collections = 0
        self._started_at: float | None = None
        self._watching = False
        gc.callbacks.append(self._callback)

    def close(self) -> None:
        """Stop listening to the collector."""
        gc.callbacks.remove(self._callback)

    def start(self) -> None:
        """Begin watching (resets the figures)."""
        self.longest = 0.0
        self.full_collections = 0
        self._watching = True

    def stop(self) -> float:
        """Stop watching; the longest pause seen, in seconds."""
        self._watching = False
        return self.longest

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
        elif self._started_at is not None and self._watching:
            self.longest = max(self.longest, time.perf_counter() - self._started_at)
            self.full_collections += info.get("generation") == 2


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile with linear interpolation between the two nearest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    """The median."""
    return percentile(values, 0.5)


_libc: Any = None


def resident_bytes() -> int:
    """The resident memory of this process after a full collection, with freed heap handed back to the system.

    Without `malloc_trim`, glibc keeps freed memory mapped and the figure would say more about the allocator's
    fragmentation than about what the integration still holds.
    """
    global _libc  # noqa: PLW0603 -- loaded once
    gc.collect()
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    with contextlib.suppress(AttributeError):
        _libc.malloc_trim(0)
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123 -- tiny, once per figure
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def python_heap_bytes() -> float:
    """What Python's small-object allocator has handed out and not got back (bytes in allocated blocks).

    Unlike the resident memory, this falls back when objects are freed: the arenas that held them may stay
    mapped (a few live objects keep an arena), which is what makes the resident figure stick after a drain.
    NaN when the interpreter does not say (another allocator).
    """
    gc.collect()
    with tempfile.TemporaryFile() as statistics:
        saved = os.dup(2)
        try:
            os.dup2(statistics.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        statistics.seek(0)
        text = statistics.read().decode(errors="replace")
    match = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    return float(match.group(1).replace(",", "")) if match else math.nan
