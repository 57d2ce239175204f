"""The outbox's promises, end to end: real Home Assistant states in, the local CHeKT cloud over real HTTP out.

Nothing of the integration is mocked. Three knobs are turned from the outside, each through the name the
integration looks up at run time:

- the backoff (`outbox.RetryPolicy`) is made fast, so that a test with the cloud down takes milliseconds;
- the clock (`outbox.Clock`) is a `StepClock`: real time, shifted by what a test says, and in manual mode every
  wait of the outbox lasts until the test moves the clock past it, so retries happen exactly when a test lets
  them — nothing here asserts on how long anything took;
- the limits (`OutboxLimits`, and the media budget) are made small where a test needs them small.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
import io
import logging
from pathlib import Path
import threading
import time
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import CoreState, HassJob, HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

import custom_components.chekt as chekt_init
from custom_components.chekt import media_folder, outbox as outbox_module
from custom_components.chekt.clock import Clock
from custom_components.chekt.const import (
    CONF_API_KEY,
    CONF_CLIENT_ID,
    CONF_LATE_AFTER,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    DOMAIN,
)
from custom_components.chekt.media import MediaStore
from custom_components.chekt.outbox import Outbox, OutboxLimits, RetryPolicy
from custom_components.chekt.store import SAVE_DELAY, STORAGE_VERSION, snapshot_file_name, storage_key
from tests.common import FakeCamera, camera_subentry, entities_refreshed, make_jpeg, setup_cameras
from tests.conftest import AUDIENCE, CLIENT_ID, SECRET
from tests.simulator import ChektSimulator, Endpoint, EventOutcome, Fault, FaultKind

FRONT_MOTION = "binary_sensor.front_motion"
YARD_MOTION = "binary_sensor.yard_motion"
FRONT, YARD = "CAM-front", "CAM-yard"
RED, GREEN, BLUE, WHITE, BLACK = (220, 20, 20), (20, 200, 20), (20, 20, 220), (250, 250, 250), (5, 5, 5)
FAST_RETRY = {"initial_delay": 0.01, "max_delay": 0.05}
# A wait is asked for a moment after its delay was drawn: it may come out this much shorter.
EPSILON = 0.001


class StepClock(Clock):
    """The outbox's clock for tests: real time shifted by `offset`, and waits a test can hold.

    In manual mode a wait lasts until `advance` moves the clock past its end, so a test decides when each retry
    happens and can look at the outbox in between. `sleeps` keeps every wait the outbox asked for.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.manual = False
        self.sleeps: list[float] = []
        self.sleeping = 0
        self._moved = asyncio.Event()

    def now(self) -> Any:
        return dt_util.utcnow() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.manual:
            await asyncio.sleep(seconds)
            return
        wake_at = self.monotonic() + seconds
        self.sleeping += 1
        try:
            while self.manual and self.monotonic() < wake_at:
                await self._moved.wait()
        finally:
            self.sleeping -= 1

    def advance(self, seconds: float) -> None:
        """Move time forward; waits that end by then are over."""
        self.offset += seconds
        self._wake()

    def run_freely(self) -> None:
        """Back to real waits; whoever waits now goes on."""
        self.manual = False
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()


# --- fixtures ---


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff in milliseconds instead of seconds."""
    monkeypatch.setattr(outbox_module, "RetryPolicy", partial(RetryPolicy, **FAST_RETRY))


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """The clock every outbox of the test uses (the same one across unload and setup)."""
    step_clock = StepClock()
    monkeypatch.setattr(outbox_module, "Clock", lambda: step_clock)
    return step_clock


@pytest.fixture
async def cameras(hass: HomeAssistant) -> tuple[FakeCamera, FakeCamera]:
    front, yard = FakeCamera("front"), FakeCamera("yard")
    await setup_cameras(hass, front, yard)
    return front, yard


def png(color: tuple[int, int, int]) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(output, format="PNG")
    return output.getvalue()


def use_limits(monkeypatch: pytest.MonkeyPatch, **limits: Any) -> None:
    """Construct the entry's outbox with these `OutboxLimits` (where `async_setup_entry` looks the class up)."""
    limited = partial(OutboxLimits, **limits)
    monkeypatch.setattr(chekt_init, "OutboxLimits", limited)
    monkeypatch.setattr(outbox_module, "OutboxLimits", limited)


# --- helpers ---


def front_subentry(**overrides: Any) -> Any:
    return camera_subentry("camera.front", (FRONT_MOTION,), **overrides)


def yard_subentry(**overrides: Any) -> Any:
    return camera_subentry("camera.yard", (YARD_MOTION,), **overrides)


async def load_entry(hass: HomeAssistant, data: dict[str, Any], *subentries: Any, **options: Any) -> MockConfigEntry:
    """Add and set up a CHeKT entry; options default to fast snapshots."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"CHeKT ({data[CONF_CLIENT_ID]})",
        unique_id=f"{data[CONF_CLIENT_ID]}@{data[CONF_TOKEN_URL]}",
        data=data,
        options={CONF_SNAPSHOT_INTERVAL: 0.05, CONF_TROUBLE_DELAY: 60} | options,
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def outbox_of(entry: MockConfigEntry) -> Outbox:
    outbox: Outbox = entry.runtime_data.outbox
    return outbox


def state_of(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def stored_records(hass_storage: dict[str, Any], entry: MockConfigEntry) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = hass_storage[storage_key(entry.entry_id)]["data"]["records"]
    return records


async def flush_saves(hass: HomeAssistant) -> None:
    """Let the outbox's batched save happen now."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done()


async def media_files(hass: HomeAssistant, entry: MockConfigEntry) -> list[str] | None:
    """The snapshot files kept for the entry, None when its folder does not exist."""
    folder = media_folder(hass, entry.entry_id)

    def listing() -> list[str] | None:
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else None

    return await hass.async_add_executor_job(listing)


def snapshots_kept(outbox: Outbox) -> int:
    """How many snapshot files the outbox's records refer to."""
    return sum(
        outbox._media.has(snapshot_file_name(record.event_id, seq))
        for record in outbox._records.values()
        for seq in range(record.event.snapshot_count)
    )


def snapshot_names(records: list[dict[str, Any]]) -> list[str]:
    """The snapshot files stored records have (or would have) on disk, sorted."""
    return sorted(
        snapshot_file_name(record["event_id"], seq)
        for record in records
        for seq in range(record["event"]["snapshot_count"])
    )


def accepted_bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    """The bodies the cloud accepted as new events, in arrival order."""
    return [record.body for record in sim.events if record.outcome is EventOutcome.ACCEPTED]


def attempts_of(sim: ChektSimulator, event_id: str) -> list[Any]:
    return [record for record in sim.events if record.event_id == event_id]


def chekt_tasks() -> list[asyncio.Task[Any]]:
    """The integration's tasks still running (their names all say chekt)."""
    return [task for task in asyncio.all_tasks() if "chekt" in task.get_name().lower() and not task.done()]


def chekt_timers(hass: HomeAssistant) -> list[Any]:
    """Timers still scheduled on behalf of the integration: its own callbacks and jobs, its stores' saves."""
    timers = []
    for handle in get_scheduled_timer_handles(hass.loop):
        if handle.cancelled():
            continue
        jobs = [arg for arg in handle._args or () if isinstance(arg, HassJob)]
        targets = [handle._callback, *(job.target for job in jobs)]
        owners = [getattr(target, "__self__", None) for target in targets]
        if (
            any(isinstance(owner, Store) and owner.key.startswith(f"{DOMAIN}.") for owner in owners)
            or any(getattr(target, "__module__", "").startswith("custom_components.") for target in targets)
            or any(DOMAIN in (job.name or "").lower() for job in jobs)
        ):
            timers.append(handle)
    return timers


async def wait_for_sleep(sim: ChektSimulator, clock: StepClock, number: int) -> float:
    """Wait until the outbox asks for its `number`th wait and is held in it; returns how long it asked for."""
    await sim.wait_for(lambda: len(clock.sleeps) >= number and clock.sleeping > 0)
    return clock.sleeps[number - 1]


async def turn_loop(times: int = 20) -> None:
    """Let every ready task run a few steps (no time passes for the outbox)."""
    for _ in range(times):
        await asyncio.sleep(0)


def log_lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == level and record.name.startswith("custom_components.chekt") and text in record.getMessage()
    ]


def issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry.entry_id}")


async def raise_alarm(hass: HomeAssistant, sim: ChektSimulator, motion: str, camera: FakeCamera) -> None:
    """Motion on, and wait for its snapshot to be taken (so that the camera may change afterwards)."""
    taken = camera.requests
    hass.states.async_set(motion, STATE_ON)
    await sim.wait_for(lambda: camera.requests > taken)


# --- 1. restart with a backlog ---


async def test_restart_delivers_the_backlog_once_in_order_with_the_snapshots_of_the_moment(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    hass_storage: dict[str, Any],
) -> None:
    front, yard = cameras
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    hass.states.async_set(YARD_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry(), yard_subentry())
    outbox = outbox_of(entry)

    # Two alarms on each camera, each with the picture of its moment.
    pictures: dict[str, list[bytes]] = {FRONT: [], YARD: []}
    for colors in ((RED, BLUE), (GREEN, WHITE)):
        for camera, motion, camera_id, color in (
            (front, FRONT_MOTION, FRONT, colors[0]),
            (yard, YARD_MOTION, YARD, colors[1]),
        ):
            camera.image = make_jpeg(color)
            pictures[camera_id].append(camera.image)
            await raise_alarm(hass, simulator, motion, camera)
            hass.states.async_set(motion, STATE_OFF)
    await simulator.wait_for(lambda: snapshots_kept(outbox) == 4)
    assert outbox.state.backlog == 8
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog") == "8"
    # The cameras show something else by the time the cloud is back.
    front.image, yard.image = make_jpeg(BLACK), make_jpeg(BLACK)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert chekt_tasks() == []
    records = stored_records(hass_storage, entry)
    assert len(records) == 8
    assert [r["event"]["camera_id"] for r in records].count(FRONT) == 4
    for camera_id in (FRONT, YARD):
        own = [r for r in records if r["event"]["camera_id"] == camera_id]
        assert [r["event"]["event_status"] for r in own] == ["active", "inactive", "active", "inactive"]
        assert [r["event"]["snapshot_count"] for r in own] == [1, 0, 1, 0]
    assert len({r["event_id"] for r in records}) == 8
    # Every picture of the moment is on disk, under the name its event gives it.
    assert await media_files(hass, entry) == snapshot_names(records)

    await simulator.start()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.accepted) == 8 and len(simulator.callbacks) == 4)
    outbox = outbox_of(entry)
    await simulator.wait_for(lambda: not outbox._records)

    # Exactly once: each stored event_id accepted once, under the id it was given when it happened.
    assert simulator.duplicate_accepts == 0
    assert sorted(simulator.accepted) == sorted(r["event_id"] for r in records)
    sent = accepted_bodies(simulator)
    assert len(sent) == 8
    assert all(record.idempotency_key == record.event_id for record in simulator.events)
    # In order per camera.
    for camera_id in (FRONT, YARD):
        own = [r for r in records if r["event"]["camera_id"] == camera_id]
        assert [(b["event_id"], b["event_status"]) for b in sent if b["camera_id"] == camera_id] == [
            (r["event_id"], r["event"]["event_status"]) for r in own
        ]
        # Each alarm's snapshot is the picture taken when it happened, not what the camera shows now.
        actives = [r["event_id"] for r in own if r["event"]["event_status"] == "active"]
        uploaded = {upload.event_id: upload for upload in simulator.uploads}
        assert [uploaded[event_id].data for event_id in actives] == pictures[camera_id]
    assert len(simulator.uploads) == 4
    assert all(u.content_type == "image/jpeg" and u.valid_media for u in simulator.uploads)
    assert all(c.upload_preceded and c.status == 200 for c in simulator.callbacks)
    assert (front.requests, yard.requests) == (2, 2)  # nothing was taken at delivery time

    # Delivered, the outbox is empty, on disk too.
    await flush_saves(hass)
    assert stored_records(hass_storage, entry) == []
    assert await media_files(hass, entry) == []
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog") == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent") == "8"


# --- 2. a lost reply ---


async def test_a_retry_after_a_lost_reply_is_not_a_second_alarm(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.LOSE_REPLY))

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert [(r.status, r.outcome, r.fault) for r in simulator.events] == [
        (201, EventOutcome.ACCEPTED, FaultKind.LOSE_REPLY),
        (201, EventOutcome.REPLAYED, None),
    ]
    first, retry = simulator.events
    assert first.event_id == retry.event_id == first.idempotency_key == retry.idempotency_key
    assert {k: v for k, v in first.body.items() if k != "sent_at"} == {
        k: v for k, v in retry.body.items() if k != "sent_at"
    }
    assert simulator.duplicate_accepts == 0
    assert list(simulator.accepted) == [first.event_id]
    assert len(simulator.uploads) == 1
    assert len(simulator.callbacks) == 1
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent") == "1"


# --- 3. stored records the cloud already has ---


async def test_an_event_whose_reply_was_lost_before_a_restart_is_delivered_once(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    clock: StepClock,
) -> None:
    front, _ = cameras
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    picture = front.image
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.LOSE_REPLY))
    clock.manual = True  # the retry waits until the test says

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    await simulator.wait_for(lambda: snapshots_kept(outbox_of(entry)) == 1)
    assert list(simulator.accepted) == [simulator.events[0].event_id]  # the cloud has it; we do not know
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    [record] = stored_records(hass_storage, entry)
    assert record["event_id"] == simulator.events[0].event_id
    assert record["targets"] is None
    assert record["sent_payload"] == simulator.events[0].body["payload"]
    front.image = make_jpeg(BLACK)

    clock.run_freely()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert [r.outcome for r in simulator.events] == [EventOutcome.ACCEPTED, EventOutcome.REPLAYED]
    assert simulator.events[1].event_id == record["event_id"]
    assert simulator.duplicate_accepts == 0
    assert [u.data for u in simulator.uploads] == [picture]
    assert len(simulator.callbacks) == 1


async def test_an_accepted_event_with_uploads_left_is_not_sent_again_after_a_restart(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    clock: StepClock,
) -> None:
    front, _ = cameras
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    picture = front.image
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503))
    clock.manual = True

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)  # the upload failed and waits for its retry
    await simulator.wait_for(lambda: snapshots_kept(outbox_of(entry)) == 1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    [record] = stored_records(hass_storage, entry)
    assert [(t["kind"], t["seq"]) for t in record["targets"]] == [("snapshot", 0)]
    assert record["accepted_at"] is not None
    front.image = make_jpeg(BLACK)

    clock.run_freely()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert len(simulator.events) == 1  # the event itself was not sent again
    assert [u.data for u in simulator.uploads] == [picture]
    assert simulator.callbacks[0].upload_preceded
    await flush_saves(hass)
    assert stored_records(hass_storage, entry) == []
    assert await media_files(hass, entry) == []


async def test_a_conflict_on_a_retry_means_the_cloud_already_has_the_event(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.LOSE_REPLY))
    clock.manual = True
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    # The cloud holds an earlier attempt of this event whose body differs from the one kept (as one stored by
    # an older version of the integration would): the retry meets 409 under the same Idempotency-Key.
    [record] = stored_records(hass_storage, entry)
    record["sent_payload"] = record["sent_payload"] | {"note": "another body"}

    clock.run_freely()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.events) == 2)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert [(r.status, r.event_id) for r in simulator.events] == [(201, record["event_id"]), (409, record["event_id"])]
    assert [m.status for m in simulator.malformed] == [409]
    simulator.malformed.clear()  # provoked on purpose
    assert len(log_lines(caplog, logging.INFO, f"CHeKT already has event {record['event_id']}")) == 1
    assert log_lines(caplog, logging.ERROR, "CHeKT refused") == []
    assert simulator.duplicate_accepts == 0
    await entities_refreshed(hass)
    last = hass.states.get(
        er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_last_event") or ""
    )
    assert last is not None
    assert (last.attributes["status"], last.attributes["reason"]) == ("accepted", "already received")
    assert issue(hass, "events_rejected", entry) is None


async def test_refused_tokens_ask_for_reauthentication_once_and_the_event_waits(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    clock: StepClock,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)
    # The API refuses even a freshly issued token, twice over: credentials trouble, not an outage.
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.UNAUTHORIZED, count=4))

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)

    assert [r.status for r in simulator.events] == [401, 401, 401, 401, 201]
    assert len({r.idempotency_key for r in simulator.events}) == 1
    # It waits the longest backoff between such attempts, and asks for new credentials once.
    assert all(wait >= FAST_RETRY["max_delay"] - EPSILON for wait in clock.sleeps[:2])
    await hass.async_block_till_done()
    flows = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == "reauth" and flow["context"].get("entry_id") == entry.entry_id
    ]
    assert len(flows) == 1


# --- 4. retries ---


async def test_failures_that_may_pass_are_retried_with_backoff_honouring_retry_after(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    clock: StepClock,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    hass.states.async_set(YARD_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0), yard_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)  # the token is fetched
    for fault in (
        Fault(Endpoint.EVENTS, FaultKind.STATUS, status=503),
        Fault(Endpoint.EVENTS, FaultKind.DROP),
        Fault(Endpoint.EVENTS, FaultKind.RATE_LIMIT, retry_after=30),
    ):
        simulator.inject(fault)
    clock.manual = True

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    # 503, then exponential backoff with jitter.
    first_wait = await wait_for_sleep(simulator, clock, 1)
    assert [r.status for r in simulator.events] == [503]
    assert FAST_RETRY["initial_delay"] / 2 - EPSILON <= first_wait <= FAST_RETRY["initial_delay"]
    clock.advance(first_wait)
    # The connection dropped without a reply.
    second_wait = await wait_for_sleep(simulator, clock, 2)
    assert [r.status for r in simulator.events] == [503, 0]
    assert FAST_RETRY["initial_delay"] - EPSILON <= second_wait <= 2 * FAST_RETRY["initial_delay"]
    clock.advance(second_wait)
    # 429 with Retry-After: 30. Nothing goes to the cloud before those 30 s are over, not even another camera.
    third_wait = await wait_for_sleep(simulator, clock, 3)
    assert [r.status for r in simulator.events] == [503, 0, 429]
    assert third_wait >= 30 - EPSILON
    hass.states.async_set(YARD_MOTION, STATE_ON)
    await simulator.wait_for(lambda: clock.sleeping == 2)  # the yard's event waits at the gate too
    clock.advance(29)
    await turn_loop()
    assert len(simulator.events) == 3
    assert clock.sleeping == 2
    clock.advance(third_wait - 29)

    await simulator.wait_for(lambda: len(simulator.accepted) == 3)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)
    front_active = simulator.events[0].event_id
    assert [r.status for r in attempts_of(simulator, front_active)] == [503, 0, 429, 201]
    assert {r.idempotency_key for r in attempts_of(simulator, front_active)} == {front_active}
    sent = accepted_bodies(simulator)
    front_sent = [(b["camera_id"], b["event_status"]) for b in sent if b["camera_id"] == FRONT]
    assert front_sent == [(FRONT, "active"), (FRONT, "inactive")]
    assert sent[0]["event_id"] == front_active
    assert [b["event_status"] for b in sent if b["camera_id"] == YARD] == ["active"]
    assert simulator.duplicate_accepts == 0
    assert len(simulator.events) == 6  # 3 failures and 3 acceptances: nothing more


async def test_failures_that_may_pass_are_retried_until_delivered_in_real_time(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    for fault in (
        Fault(Endpoint.EVENTS, FaultKind.STATUS, status=500, count=2),
        Fault(Endpoint.EVENTS, FaultKind.RATE_LIMIT, retry_after=0),
        Fault(Endpoint.EVENTS, FaultKind.DROP),
        Fault(Endpoint.EVENTS, FaultKind.STATUS, status=502),
        Fault(Endpoint.UPLOAD, FaultKind.DROP),
        Fault(Endpoint.CALLBACK, FaultKind.STATUS, status=503),
    ):
        simulator.inject(fault)

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.wait_for(lambda: len(simulator.accepted) == 2 and len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    active, inactive = accepted_bodies(simulator)
    assert (active["event_status"], inactive["event_status"]) == ("active", "inactive")
    assert [r.status for r in attempts_of(simulator, active["event_id"])] == [500, 500, 429, 0, 502, 201]
    assert [r.status for r in attempts_of(simulator, inactive["event_id"])] == [201]
    assert simulator.duplicate_accepts == 0
    assert len(simulator.uploads) == 1
    assert [c.status for c in simulator.callbacks] == [200]  # the first callback was answered by the fault
    assert [f.endpoint for f in simulator.faults if f.endpoint is not Endpoint.EVENTS] == [
        Endpoint.UPLOAD,
        Endpoint.CALLBACK,
    ]
    assert simulator.pending_faults == 0


async def test_a_refused_upload_is_dropped_and_a_clip_is_not_made_up(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(upload_short_mp4=True))
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=403))

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert [f.endpoint for f in simulator.faults] == [Endpoint.UPLOAD]  # tried once, not again
    assert simulator.uploads == []
    assert simulator.callbacks == []  # never confirmed what did not arrive
    [refused] = log_lines(caplog, logging.WARNING, "was refused (")
    assert refused.startswith("Media snapshot 0 of event")
    assert log_lines(caplog, logging.DEBUG, "No short_mp4 is recorded") != []


async def test_snapshots_of_failing_png_and_unreadable_cameras(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    caplog: pytest.LogCaptureFixture,
) -> None:
    front, yard = cameras
    front.failing = True
    yard.content_type = "image/png"
    yard.image = png(GREEN)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    hass.states.async_set(YARD_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(), yard_subentry(snapshot_count=2))

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await raise_alarm(hass, simulator, YARD_MOTION, yard)
    yard.image = b"this is not an image"  # the second snapshot
    await simulator.wait_for(lambda: len(simulator.accepted) == 2 and len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    # Each event goes out; only the yard's converted first snapshot has a picture to upload.
    [upload] = simulator.uploads
    assert (upload.seq, upload.content_type, upload.valid_media) == (0, "image/jpeg", True)
    assert simulator.accepted[upload.event_id].body["camera_id"] == YARD
    assert len(log_lines(caplog, logging.WARNING, "Snapshot 0 of camera.front failed")) == 1
    assert len(log_lines(caplog, logging.WARNING, "could not be converted to JPEG")) == 1
    assert len(log_lines(caplog, logging.WARNING, "is missing; nothing to upload")) == 2


# --- 5. refusals ---


async def test_a_refused_event_is_recorded_once_and_repeated_refusals_raise_an_issue(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # CHeKT expects an API key for this application; the entry carries another one: every event gets 403.
    simulator.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE, api_key="the-key-chekt-expects")
    data = entry_data | {CONF_API_KEY: "the-key-we-were-given"}
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, data, front_subentry(snapshot_count=0))
    outbox = outbox_of(entry)
    message = "X-API-KEY: missing or not the API key of this client"

    for number, state in enumerate((STATE_ON, STATE_OFF, STATE_ON), start=1):
        hass.states.async_set(FRONT_MOTION, state)
        await simulator.wait_for(lambda n=number: len(simulator.events) == n and outbox.state.backlog == 0)
        await simulator.wait_for(lambda: not outbox._workers)  # nothing left to retry
        assert (issue(hass, "events_rejected", entry) is not None) == (number == 3)

    assert [r.status for r in simulator.events] == [403, 403, 403]
    # Refused before its body was read; the Idempotency-Key is the event's id.
    event_ids = [r.idempotency_key for r in simulator.events]
    assert len(set(event_ids)) == 3  # each event requested once, never again
    refusals = log_lines(caplog, logging.ERROR, "CHeKT refused")
    assert len(refusals) == 3
    for event_id, line in zip(event_ids, refusals, strict=True):
        assert event_id in line
        assert line.endswith(message)
    rejected = issue(hass, "events_rejected", entry)
    assert rejected is not None
    assert rejected.translation_placeholders is not None
    assert rejected.translation_placeholders["count"] == "3"
    assert rejected.translation_placeholders["message"] == message
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent") == "0"
    last = hass.states.get(
        er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_last_event") or ""
    )
    assert last is not None
    assert (last.attributes["status"], last.attributes["reason"]) == ("rejected", message)

    # The key is put right at CHeKT's end: the next event is accepted and the issue goes away by itself.
    simulator.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE, api_key="the-key-we-were-given")
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)
    await simulator.wait_for(lambda: issue(hass, "events_rejected", entry) is None)
    assert len(simulator.events) == 4


# --- 6. upload URLs that expire ---


async def test_an_upload_is_not_retried_once_its_url_has_expired(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503, count=1000))
    clock.manual = True

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    upload_faults = [f for f in simulator.faults if f.endpoint is Endpoint.UPLOAD]
    assert len(upload_faults) == 1
    assert outbox.state.pending_uploads == 1
    # The simulator's URLs live 300 s: move past that.
    clock.advance(301)
    await simulator.wait_for(lambda: not outbox._records)
    await turn_loop()
    clock.advance(3600)
    await turn_loop()

    assert len([f for f in simulator.faults if f.endpoint is Endpoint.UPLOAD]) == 1  # never tried again
    assert simulator.uploads == []
    assert simulator.callbacks == []
    assert len(log_lines(caplog, logging.WARNING, "has expired; the media is dropped")) == 1
    assert outbox.state.pending_uploads == 0
    await flush_saves(hass)
    assert stored_records(hass_storage, entry) == []
    assert not await media_files(hass, entry)  # never written (given up within the write delay), or deleted


async def test_an_upload_url_that_expired_during_a_restart_is_not_tried(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503))
    clock.manual = True
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    await simulator.wait_for(lambda: snapshots_kept(outbox_of(entry)) == 1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert len(stored_records(hass_storage, entry)[0]["targets"]) == 1

    clock.advance(3600)  # Home Assistant was down for an hour
    clock.run_freely()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert simulator.uploads == []
    assert len([f for f in simulator.faults if f.endpoint is Endpoint.UPLOAD]) == 1
    assert simulator.callbacks == []
    assert len(log_lines(caplog, logging.WARNING, "has expired; the media is dropped")) == 1
    await flush_saves(hass)
    assert stored_records(hass_storage, entry) == []
    assert await media_files(hass, entry) == []


# --- 7. a full outbox ---


async def test_over_the_media_budget_the_oldest_snapshots_go_first_and_every_event_stays(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    front, _ = cameras
    pictures = [make_jpeg(color) for color in (RED, GREEN, BLUE)]
    budget = sum(sorted(len(p) for p in pictures)[1:]) + 10  # room for two snapshots, not three
    use_limits(monkeypatch, media_budget_bytes=budget)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)

    event_ids = []
    for number, picture in enumerate(pictures):
        front.image = picture
        await raise_alarm(hass, simulator, FRONT_MOTION, front)
        event_ids.append(list(outbox._records)[-1])
        if number < 2:
            hass.states.async_set(FRONT_MOTION, STATE_OFF)
        await simulator.wait_for(lambda: not outbox._images)  # written to disk (or evicted)
    await simulator.wait_for(lambda: issue(hass, "outbox_full", entry) is not None)

    assert outbox.state.backlog == 5  # every event is kept
    assert [outbox._media.has(snapshot_file_name(event_id, 0)) for event_id in event_ids] == [False, True, True]
    assert len(await media_files(hass, entry) or []) == 2
    full = issue(hass, "outbox_full", entry)
    assert full is not None
    assert full.translation_placeholders is not None
    assert (full.translation_placeholders["dropped_media"], full.translation_placeholders["dropped_events"]) == (
        "1",
        "0",
    )
    assert len(log_lines(caplog, logging.WARNING, "over its media budget")) == 1

    await simulator.start()
    await simulator.wait_for(lambda: len(simulator.accepted) == 5 and len(simulator.callbacks) == 2)
    await simulator.wait_for(lambda: issue(hass, "outbox_full", entry) is None)
    assert [b["event_id"] for b in accepted_bodies(simulator) if b["event_status"] == "active"] == event_ids
    uploaded = {u.event_id: u.data for u in simulator.uploads}
    assert uploaded == {event_ids[1]: pictures[1], event_ids[2]: pictures[2]}
    assert len(log_lines(caplog, logging.WARNING, "is missing; nothing to upload")) == 1
    assert simulator.duplicate_accepts == 0


async def test_the_media_budget_of_the_outbox_limits_is_the_one_enforced(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_limits(monkeypatch, media_budget_bytes=1234)
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)

    assert outbox._limits.media_budget_bytes == 1234
    assert outbox._media.budget_bytes == outbox._limits.media_budget_bytes


async def test_over_max_events_the_oldest_events_are_dropped_last(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_limits(monkeypatch, max_events=5)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    outbox = outbox_of(entry)

    event_ids: list[str] = []
    for state in (STATE_ON, STATE_OFF, STATE_ON, STATE_OFF, STATE_ON):
        hass.states.async_set(FRONT_MOTION, state)
        event_ids.append(list(outbox._records)[-1])
    assert outbox.state.backlog == 5
    assert issue(hass, "outbox_full", entry) is None
    # Two more: the two oldest go.
    for state in (STATE_OFF, STATE_ON):
        hass.states.async_set(FRONT_MOTION, state)
        event_ids.append(list(outbox._records)[-1])
    # The oldest event is being sent this very moment (its first attempt left at once): it is kept, and the
    # two oldest after it go.
    kept = [event_ids[0], *event_ids[3:]]
    assert list(outbox._records) == kept
    assert outbox.state.backlog == 5
    full = issue(hass, "outbox_full", entry)
    assert full is not None
    assert full.translation_placeholders is not None
    assert full.translation_placeholders["dropped_events"] == "2"
    dropped = log_lines(caplog, logging.ERROR, "dropped the oldest event")
    assert [line.rsplit(" ", 1)[1] for line in dropped] == event_ids[1:3]
    await flush_saves(hass)
    assert [r["event_id"] for r in stored_records(hass_storage, entry)] == kept

    await simulator.start()
    await simulator.wait_for(lambda: not outbox._records)
    await simulator.wait_for(lambda: issue(hass, "outbox_full", entry) is None)
    await turn_loop()
    # The dropped events never reach the cloud; the others do, in order.
    assert [b["event_id"] for b in accepted_bodies(simulator)] == kept
    assert simulator.duplicate_accepts == 0


async def test_over_max_events_uploads_still_waiting_go_before_any_event(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_limits(monkeypatch, max_events=3)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503))
    clock.manual = True
    # The first alarm is accepted; its snapshot's upload fails and waits for a retry.
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    [uploading] = list(outbox._records)
    assert outbox._records[uploading].accepted

    await simulator.stop()
    event_ids = []
    for state in (STATE_OFF, STATE_ON, STATE_OFF):
        hass.states.async_set(FRONT_MOTION, state)
        event_ids.append(list(outbox._records)[-1])
    # Four records for three places: the accepted event's upload gives way, every event stays.
    assert list(outbox._records) == event_ids
    assert outbox.state.backlog == 3
    full = issue(hass, "outbox_full", entry)
    assert full is not None
    assert full.translation_placeholders is not None
    assert (full.translation_placeholders["dropped_media"], full.translation_placeholders["dropped_events"]) == (
        "1",
        "0",
    )
    assert log_lines(caplog, logging.ERROR, "dropped the oldest event") == []

    await simulator.start()
    clock.run_freely()
    await simulator.wait_for(lambda: len(simulator.accepted) == 4)
    await simulator.wait_for(lambda: not outbox._records)
    await simulator.wait_for(lambda: issue(hass, "outbox_full", entry) is None)
    assert [b["event_id"] for b in accepted_bodies(simulator)] == [uploading, *event_ids]


# --- 8. late events ---


@pytest.mark.parametrize("outage", ["cloud down", "token endpoint failing"])
async def test_an_event_delivered_after_late_after_is_flagged_late(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    clock: StepClock,
    outage: str,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    if outage == "cloud down":
        await simulator.stop()
    else:
        # The token endpoint fails (its 503 is all the event request meets: it never leaves).
        simulator.inject(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=503, count=2))
    await load_entry(hass, entry_data, front_subentry(snapshot_count=0), **{CONF_LATE_AFTER: 120})
    await hass.async_block_till_done(wait_background_tasks=True)
    clock.manual = True

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    assert simulator.events == []
    # Three minutes later the cloud is back.
    await simulator.start()
    clock.advance(180)
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)

    [body] = accepted_bodies(simulator)
    assert body["payload"]["late"] is True
    assert body["payload"]["delay_seconds"] >= 180
    assert body["payload"]["entity_id"] == FRONT_MOTION  # the rest of the payload is untouched


async def test_an_event_on_time_has_no_late_flag(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)
    [body] = accepted_bodies(simulator)
    assert "late" not in body["payload"]
    assert "delay_seconds" not in body["payload"]


async def test_a_request_that_may_have_reached_the_cloud_keeps_its_body_when_it_becomes_late(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.LOSE_REPLY))
    clock.manual = True

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await wait_for_sleep(simulator, clock, 1)
    clock.advance(3600)  # the retry leaves an hour later: the event is late by now
    await simulator.wait_for(lambda: len(simulator.events) == 2)

    first, retry = simulator.events
    assert [r.status for r in simulator.events] == [201, 201]
    assert retry.outcome is EventOutcome.REPLAYED  # the same body under the same key: no 409
    assert retry.body["payload"] == first.body["payload"]
    assert "late" not in retry.body["payload"]
    assert simulator.malformed == []
    assert simulator.duplicate_accepts == 0
    assert log_lines(caplog, logging.INFO, "already has event") == []


# --- 9. unload and removal ---


async def test_unload_during_retries_and_snapshots_leaves_nothing_behind_and_removal_deletes_the_outbox(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    hass_storage: dict[str, Any],
) -> None:
    front, yard = cameras
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    hass.states.async_set(YARD_MOTION, STATE_OFF)
    await simulator.stop()
    # Three snapshots a minute apart: the series is still running when the entry unloads.
    entry = await load_entry(
        hass, entry_data, front_subentry(snapshot_count=3), yard_subentry(snapshot_count=3), snapshot_interval=60
    )
    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await raise_alarm(hass, simulator, YARD_MOTION, yard)
    outbox = outbox_of(entry)
    await simulator.wait_for(lambda: snapshots_kept(outbox) == 2)
    assert {task.get_name() for task in chekt_tasks()} >= {
        "chekt snapshots of camera.front",
        "chekt delivery for " + next(iter(entry.subentries)),
    }

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert chekt_tasks() == []
    assert chekt_timers(hass) == []
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert chekt_tasks() == []
    assert chekt_timers(hass) == []
    assert (front.requests, yard.requests) == (1, 1)
    assert len(stored_records(hass_storage, entry)) == 2
    folder = media_folder(hass, entry.entry_id)
    assert len(await media_files(hass, entry) or []) == 2

    # Loaded again, still offline, then removed: its outbox and its snapshots go with it.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert outbox_of(entry).state.backlog == 2
    assert await hass.config_entries.async_remove(entry.entry_id) == {"require_restart": False}
    await hass.async_block_till_done()

    assert chekt_tasks() == []
    assert chekt_timers(hass) == []
    assert storage_key(entry.entry_id) not in hass_storage
    assert not await hass.async_add_executor_job(Path.exists, folder)
    assert simulator.events == []


async def test_a_snapshot_that_cannot_be_kept_on_disk_is_still_uploaded(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, snapshot_write_delay=0)  # written at once, not only if the upload takes a while
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    # Something that is not a folder stands where the snapshots go: every write fails.
    folder = media_folder(hass, entry.entry_id)
    await hass.async_add_executor_job(lambda: folder.parent.mkdir(parents=True, exist_ok=True))
    await hass.async_add_executor_job(folder.write_bytes, b"")

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [u.data for u in simulator.uploads] == [front.image]
    assert outbox_of(entry)._images == {}
    # The failure is reported as what it is (and raises nothing out of a background task).
    assert any("snapshot" in line.lower() for line in log_lines(caplog, logging.WARNING, ""))


async def test_snapshots_uploaded_within_the_write_delay_never_touch_the_disk(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, snapshot_write_delay=3600)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)

    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not outbox._records)
    assert [u.data for u in simulator.uploads] == [front.image]
    assert outbox._images == {}
    # Unloading writes whatever is still waiting for its upload: nothing is.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await media_files(hass, entry) is None
    assert chekt_timers(hass) == []


async def test_a_snapshot_still_waiting_is_written_when_its_event_is_saved_or_on_unload(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, snapshot_write_delay=3600)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)

    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await hass.async_block_till_done()
    assert await media_files(hass, entry) is None  # in memory until the delay is over
    assert snapshots_kept(outbox) == 0
    # The delay passes (as the store's save does): the picture goes to disk.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=3601))
    await simulator.wait_for(lambda: snapshots_kept(outbox) == 1)
    first = snapshot_file_name(next(iter(outbox._records)), 0)
    assert await media_files(hass, entry) == [first]

    # The next alarm's picture is still in memory when the entry unloads: it is written then.
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    front.image = make_jpeg(GREEN)
    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await hass.async_block_till_done()
    assert snapshots_kept(outbox) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    records = stored_records(hass_storage, entry)
    kept = snapshot_names(records)
    assert len(kept) == 2
    assert await media_files(hass, entry) == kept
    assert chekt_timers(hass) == []


async def test_stopping_home_assistant_writes_the_snapshots_still_in_memory(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, snapshot_write_delay=3600)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())

    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await hass.async_block_till_done()
    assert await media_files(hass, entry) is None
    # Stopping does not unload the entry: the record is saved on the final write, with its picture on disk.
    await hass.async_stop()
    records = stored_records(hass_storage, entry)
    kept = snapshot_names(records)
    assert len(records) == 1
    assert len(kept) == 1
    assert await asyncio.to_thread((media_folder(hass, entry.entry_id) / kept[0]).read_bytes) == front.image


async def test_snapshots_being_written_as_home_assistant_stops_are_all_kept(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    front, yard = cameras
    use_limits(monkeypatch, snapshot_write_delay=0)  # due at once: their writes are under way when HA stops
    for motion in (FRONT_MOTION, YARD_MOTION):
        hass.states.async_set(motion, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry(), yard_subentry())
    outbox = outbox_of(entry)
    # The disk is busy (another write holds it): both pictures wait for their turn to be written ...
    disk = outbox._media._file_jobs
    await disk.acquire()
    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await raise_alarm(hass, simulator, YARD_MOTION, yard)
    await turn_loop()
    assert outbox.writing_snapshots
    assert await media_files(hass, entry) is None

    # ... when Home Assistant stops, which cancels every background task (the writer's too) before it says so.
    stopping = hass.async_create_background_task(hass.async_stop(), "stop")
    await simulator.wait_for(lambda: hass.state is CoreState.stopping)
    disk.release()
    await stopping

    records = stored_records(hass_storage, entry)
    kept = snapshot_names(records)
    assert len(records) == 2
    assert len(kept) == 2
    assert await media_files(hass, entry) == kept
    folder = media_folder(hass, entry.entry_id)
    contents = {await asyncio.to_thread((folder / name).read_bytes) for name in kept}
    assert contents == {front.image, yard.image}


async def test_a_snapshot_uploaded_while_its_write_waits_or_runs_is_not_kept(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    front, yard = cameras
    use_limits(monkeypatch, snapshot_write_delay=0)
    # The disk is slow: a write, once started, waits for the test.
    disk_free = threading.Event()
    write_files = MediaStore._write_files

    def slow_write(store: MediaStore, files: list[Any]) -> dict[str, OSError]:
        disk_free.wait(timeout=10)
        return write_files(store, files)

    monkeypatch.setattr(MediaStore, "_write_files", slow_write)
    for motion in (FRONT_MOTION, YARD_MOTION):
        hass.states.async_set(motion, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(), yard_subentry())
    outbox = outbox_of(entry)

    # The front picture's write is under way, the yard's waits behind it; both are uploaded from memory.
    await raise_alarm(hass, simulator, FRONT_MOTION, front)
    await raise_alarm(hass, simulator, YARD_MOTION, yard)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 2)
    await simulator.wait_for(lambda: not outbox._records)
    assert outbox.writing_snapshots
    disk_free.set()
    await simulator.wait_for(lambda: not outbox.writing_snapshots)
    await hass.async_block_till_done(wait_background_tasks=True)

    # The picture written meanwhile is deleted again; the other is never written.
    assert sorted(u.data for u in simulator.uploads) == sorted([front.image, yard.image])
    assert await media_files(hass, entry) == []
    assert outbox._media.count == 0
    assert outbox._images == {}


async def test_unloading_waits_for_a_stuck_disk_only_so_long(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, snapshot_write_delay=0)
    monkeypatch.setattr(outbox_module, "WRITE_WAIT_ON_STOP", 0.05)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())
    disk = outbox_of(entry)._media._file_jobs
    await disk.acquire()
    await raise_alarm(hass, simulator, FRONT_MOTION, front)

    assert await hass.config_entries.async_unload(entry.entry_id)
    disk.release()

    # The unload ends, and says what it could not keep; the event itself is saved.
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert log_lines(caplog, logging.WARNING, "Could not write 1 snapshots to disk within 0.05 s")
    assert len(stored_records(hass_storage, entry)) == 1


async def test_a_backlog_goes_out_no_further_ahead_of_its_media_than_allowed_and_live_alarms_never_wait(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
) -> None:
    front, yard = cameras
    use_limits(monkeypatch, uploads_ahead_of_backlog=1)
    arrivals: list[tuple[str, str]] = []
    simulator.add_listener(lambda record: arrivals.append((type(record).__name__, record.event_id)))
    for motion in (FRONT_MOTION, YARD_MOTION):
        hass.states.async_set(motion, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry(), yard_subentry())
    outbox = outbox_of(entry)
    # A backlog on the front camera: three alarms, each with its picture.
    for _ in range(3):
        await raise_alarm(hass, simulator, FRONT_MOTION, front)
        hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await hass.async_block_till_done()
    alarms = [r.event_id for r in outbox._records.values() if r.event.event_status == "active"]
    assert len(alarms) == 3
    clock.advance(60)  # they waited

    # The cloud is back, slow to take the first picture: while it does, a live alarm on the yard goes out at once.
    simulator.inject(Fault("upload", "delay", seconds=1.0))
    await simulator.start()
    await simulator.wait_for(lambda: outbox._uploading == 1)
    await raise_alarm(hass, simulator, YARD_MOTION, yard)
    await simulator.wait_for(lambda: not outbox._records, timeout=20)

    # The live alarm did not wait for the backlog's media ...
    live = next(event_id for kind, event_id in arrivals if kind == "EventRecord" and event_id not in alarms)
    assert arrivals.index(("EventRecord", live)) < arrivals.index(("UploadRecord", alarms[0]))
    # ... and each alarm of the backlog went out only once the pictures before it were confirmed.
    order = [(kind, event_id) for kind, event_id in arrivals if event_id in alarms]
    expected = [(kind, event_id) for event_id in alarms for kind in ("EventRecord", "UploadRecord", "CallbackRecord")]
    assert order == expected


async def test_a_backlog_does_not_wait_for_media_that_make_no_progress(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
) -> None:
    front, _ = cameras
    use_limits(monkeypatch, uploads_ahead_of_backlog=1, media_stalled_after=timedelta(seconds=0.2))
    arrivals: list[tuple[str, str]] = []
    simulator.add_listener(lambda record: arrivals.append((type(record).__name__, record.event_id)))
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)
    for _ in range(2):
        await raise_alarm(hass, simulator, FRONT_MOTION, front)
        hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await hass.async_block_till_done()
    alarms = [r.event_id for r in outbox._records.values() if r.event.event_status == "active"]
    clock.advance(60)

    # The first picture takes the cloud 3 s: the next alarm waits a moment for it, then goes.
    simulator.inject(Fault("upload", "delay", seconds=3.0))
    await simulator.start()
    await simulator.wait_for(lambda: not outbox._records, timeout=20)

    assert arrivals.index(("EventRecord", alarms[1])) < arrivals.index(("UploadRecord", alarms[0]))
    assert {event_id for kind, event_id in arrivals if kind == "CallbackRecord"} == set(alarms)


# --- 10. connectivity, backlog and the failing issue ---


async def test_connectivity_backlog_and_the_failing_issue_follow_an_outage(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_limits(monkeypatch, failing_after=timedelta(minutes=10))
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    cloud, backlog = f"{entry.entry_id}_cloud", f"{entry.entry_id}_backlog"
    await simulator.wait_for(lambda: state_of(hass, "binary_sensor", cloud) == STATE_ON)

    await simulator.stop()
    for state in (STATE_ON, STATE_OFF, STATE_ON):
        hass.states.async_set(FRONT_MOTION, state)
    await simulator.wait_for(lambda: len(clock.sleeps) >= 5)
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", backlog) == "3"
    # A failure the next attempt may fix is no outage yet; ten seconds of failures are.
    assert state_of(hass, "binary_sensor", cloud) == STATE_ON
    clock.advance(11)
    await simulator.wait_for(lambda: state_of(hass, "binary_sensor", cloud) == STATE_OFF)
    failures = len(clock.sleeps)
    await simulator.wait_for(lambda: len(clock.sleeps) >= failures + 20)  # many more failed attempts
    assert state_of(hass, "binary_sensor", cloud) == STATE_OFF
    assert issue(hass, "delivery_failing", entry) is None  # not failing long enough yet

    clock.advance(10 * 60)
    await simulator.wait_for(lambda: issue(hass, "delivery_failing", entry) is not None)
    failing = issue(hass, "delivery_failing", entry)
    assert failing is not None
    assert failing.translation_placeholders is not None
    assert failing.translation_placeholders["minutes"] == "10"

    await simulator.start()
    await simulator.wait_for(lambda: len(simulator.accepted) == 3)
    await simulator.wait_for(lambda: state_of(hass, "sensor", backlog) == "0")
    assert state_of(hass, "binary_sensor", cloud) == STATE_ON
    assert issue(hass, "delivery_failing", entry) is None
    assert len(log_lines(caplog, logging.WARNING, "The CHeKT cloud is unreachable")) == 1
    assert len(log_lines(caplog, logging.INFO, "The CHeKT cloud is reachable again")) == 1
    assert [b["event_status"] for b in accepted_bodies(simulator)] == ["active", "inactive", "active"]


async def test_a_refusal_after_an_outage_shows_the_cloud_reachable_again(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
) -> None:
    use_limits(monkeypatch, failing_after=timedelta(minutes=10))
    simulator.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE, api_key="the-key-chekt-expects")
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(
        hass, entry_data | {CONF_API_KEY: "the-key-we-were-given"}, front_subentry(snapshot_count=0)
    )
    cloud = f"{entry.entry_id}_cloud"
    await simulator.stop()
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(clock.sleeps) >= 2)
    clock.advance(11 * 60)
    await simulator.wait_for(lambda: issue(hass, "delivery_failing", entry) is not None)
    await entities_refreshed(hass)
    assert state_of(hass, "binary_sensor", cloud) == STATE_OFF

    # The cloud is back and answers, with a refusal: nothing waits for it any more.
    await simulator.start()
    await simulator.wait_for(lambda: [r.status for r in simulator.events] == [403])
    await simulator.wait_for(lambda: not outbox_of(entry)._records)
    await turn_loop()

    assert outbox_of(entry).state.backlog == 0
    await entities_refreshed(hass)
    assert state_of(hass, "binary_sensor", cloud) == STATE_ON
    assert issue(hass, "delivery_failing", entry) is None


async def test_issues_raised_before_a_reload_go_away_when_the_cloud_recovers(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    monkeypatch: pytest.MonkeyPatch,
    clock: StepClock,
) -> None:
    use_limits(monkeypatch, failing_after=timedelta(minutes=10))
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    await simulator.stop()
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(clock.sleeps) >= 2)
    clock.advance(11 * 60)
    await simulator.wait_for(lambda: issue(hass, "delivery_failing", entry) is not None)

    # An options change reloads the entry while the cloud is still down.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await simulator.start()
    await simulator.wait_for(lambda: len(simulator.accepted) == 1)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)
    await turn_loop()

    assert outbox_of(entry).state.cloud_reachable is True
    assert issue(hass, "delivery_failing", entry) is None


# --- 11. raising an alarm never waits ---


async def test_raising_an_alarm_while_the_cloud_is_down_returns_at_once(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    hass_storage: dict[str, Any],
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.stop()
    entry = await load_entry(hass, entry_data, front_subentry())
    outbox = outbox_of(entry)
    before = set(outbox._records)

    # No await between the state change and the checks: the event was taken synchronously, in the callback.
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    assert outbox.state.backlog == 1
    # The backlog sensor is not written inside the alarm's state change: it shows the new count a moment later.
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog") == "0"
    [event_id] = set(outbox._records) - set(before)
    record = outbox._records[event_id]
    assert (record.event.event_type, record.event.event_status) == ("alarm", "active")
    # Its delivery goes on in the background: the worker is suspended on the network, nothing settled.
    worker = outbox._workers[record.event.source]
    assert not worker.done()
    assert outbox.state.last_status is None
    assert outbox._outcomes == {}  # the rules do not wait for an answer: no future is kept per event

    await hass.async_block_till_done()
    await flush_saves(hass)
    assert [r["event_id"] for r in stored_records(hass_storage, entry)] == [event_id]
    assert not simulator.running
    assert outbox.state.backlog == 1
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog") == "1"


# --- the loaded backlog ---


async def test_a_backlog_written_before_setup_is_delivered_and_damaged_records_are_skipped(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    *,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry(snapshot_count=0))
    hass.states.async_set(FRONT_MOTION, STATE_ON)
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    await simulator.wait_for(lambda: len(simulator.accepted) == 2)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    sent = accepted_bodies(simulator)

    # A backlog as a crash could leave it: two events (stored newest first), one damaged record.
    base = {
        "created_at": dt_util.utcnow().isoformat(),
        "attempts": 0,
        "sent_payload": None,
        "targets": None,
        "accepted_at": None,
        "media": {},
    }
    subentry_id = next(iter(entry.subentries))
    event = {
        "source": subentry_id,
        "event_type": "alarm",
        "event_time": dt_util.utcnow().isoformat(),
        "location_id": "LOC1",
        "camera_id": FRONT,
        "recorder_id": "REC1",
        "signal_monitoring_center": True,
        "snapshot_count": 0,
        "upload_short_mp4": False,
        "upload_event_mp4": False,
        "camera_entity_id": "camera.front",
        "payload": {"entity_id": FRONT_MOTION},
    }
    newer, older = str(int(sent[-1]["event_id"]) + 20), str(int(sent[-1]["event_id"]) + 10)
    hass_storage[storage_key(entry.entry_id)] = {
        "version": STORAGE_VERSION,
        "key": storage_key(entry.entry_id),
        "data": {
            "events_sent": 2,
            "records": [
                base | {"event_id": newer, "event": event | {"event_status": "inactive"}},
                base | {"event_id": "damaged", "event": event | {"event_status": "maybe"}},
                base | {"event_id": older, "event": event | {"event_status": "active"}},
            ],
        },
    }

    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.accepted) == 4)
    await simulator.wait_for(lambda: not outbox_of(entry)._records)

    assert [(b["event_id"], b["event_status"]) for b in accepted_bodies(simulator)[2:]] == [
        (older, "active"),
        (newer, "inactive"),
    ]
    assert len(log_lines(caplog, logging.ERROR, "Skipping a damaged event")) == 1
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent") == "4"


async def test_files_left_without_an_event_are_deleted_at_start(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: tuple[FakeCamera, FakeCamera],
    hass_storage: dict[str, Any],
) -> None:
    hass.states.async_set(FRONT_MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front_subentry())
    assert await hass.config_entries.async_unload(entry.entry_id)
    folder = media_folder(hass, entry.entry_id)

    def leave_files() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "123_snapshot_0.jpg").write_bytes(make_jpeg())
        (folder / ".124_snapshot_0.jpg.partial").write_bytes(b"\xff\xd8")

    await hass.async_add_executor_job(leave_files)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert await media_files(hass, entry) == []


def test_backoff_stays_at_its_ceiling_however_long_the_outage() -> None:
    # Some 1,000 failures in a row (a day without the cloud) used to overflow 2**failures into an OverflowError.
    retry = RetryPolicy(initial_delay=1.0, max_delay=120.0)
    for failures in (0, 7, 1_023, 1_024, 100_000):
        ceiling = min(120.0, 2.0 ** min(failures, 10))
        assert ceiling / 2 <= retry.delay(failures) <= ceiling
