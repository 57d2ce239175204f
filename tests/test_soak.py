"""Soak: 1,000 events from 50 cameras through random faults, an outage and a Home Assistant restart.

Time inside the outbox runs 60 times faster than the wall clock (`ScaledClock`), so an outage of several
simulated minutes, and the backoff it causes, pass in seconds; everything else is real: Home Assistant, the
forwarding rules, the outbox with its `Store`, snapshots from cameras, and HTTP to the local CHeKT cloud.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
import itertools
import random
import time
from typing import Any

from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_test_home_assistant

from custom_components.chekt.clock import Clock
from custom_components.chekt.const import CONF_SNAPSHOT_INTERVAL, CONF_TOKEN_URL, DOMAIN
from tests.common import FakeCamera, camera_subentry, make_jpeg, setup_cameras
from tests.conftest import AUDIENCE, CLIENT_ID, SECRET
from tests.simulator import ChektSimulator, Fault

pytestmark = pytest.mark.soak

CAMERAS = 50
TOGGLES_PER_CAMERA = 20  # on, off, on ... : 20 events per camera, 1,000 in all
TIME_SCALE = 60.0
OUTAGE_SIMULATED = timedelta(minutes=5)
SEED = 20261127


class ScaledClock(Clock):
    """Outbox time running `scale` times faster than the wall clock."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._start = time.monotonic()
        self._wall_start = dt_util.utcnow()

    def monotonic(self) -> float:
        return (time.monotonic() - self._start) * self._scale

    def now(self) -> datetime:
        return self._wall_start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self._scale)


def sensor(index: int) -> str:
    return f"binary_sensor.soak_motion_{index:02d}"


def camera_name(index: int) -> str:
    return f"soak_{index:02d}"


@pytest.fixture
async def soak_cloud(socket_enabled: None) -> AsyncIterator[ChektSimulator]:
    # Upload URLs must outlive the soak in simulated time (60 x faster than the simulator's real clock).
    sim = ChektSimulator(upload_ttl=24 * 3600)
    await sim.start()
    sim.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE)
    try:
        yield sim
    finally:
        await sim.stop()


def soak_entry(sim: ChektSimulator, entry_id: str | None = None) -> MockConfigEntry:
    data = {
        "api_url": sim.base_url,
        "token_url": sim.token_url,
        "client_id": CLIENT_ID,
        "signing_key": SECRET,
        "audience": AUDIENCE,
    }
    # Subentry ids are part of the stored config entry: the same after a restart.
    subentries = [
        camera_subentry(f"camera.{camera_name(i)}", (sensor(i),), location_id="SOAK", camera_id=f"CAM{i:02d}")
        | {"subentry_id": f"soak-camera-{i:02d}"}
        for i in range(CAMERAS)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=entry_id,
        title="CHeKT (soak)",
        unique_id=f"{CLIENT_ID}@{data[CONF_TOKEN_URL]}",
        data=data,
        options={CONF_SNAPSHOT_INTERVAL: 0.2},
        subentries_data=subentries,
    )


async def start_home(hass: HomeAssistant, sim: ChektSimulator, states: dict[str, str], entry_id: str | None) -> str:
    """Cameras, sensors (in their last states, as restored at start-up) and the CHeKT entry."""
    await setup_cameras(hass, *(FakeCamera(camera_name(i), make_jpeg((i * 5, 100, 200))) for i in range(CAMERAS)))
    for entity_id, state in states.items():
        hass.states.async_set(entity_id, state)
    entry = soak_entry(sim, entry_id)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry.entry_id


class Household:
    """The motion sensors of the soak: each flips exactly TOGGLES_PER_CAMERA times, in a random order."""

    def __init__(self) -> None:
        self.states = {sensor(i): "off" for i in range(CAMERAS)}
        self.toggles_left = [TOGGLES_PER_CAMERA] * CAMERAS
        self._rng = random.Random(SEED)  # noqa: S311 -- a seeded, repeatable schedule

    @property
    def done(self) -> bool:
        return not any(self.toggles_left)

    async def toggle(self, hass: HomeAssistant, count: int) -> None:
        """Flip up to `count` random sensors, a few milliseconds apart (each flip is one event)."""
        for _ in range(count):
            index = self._rng.randrange(CAMERAS)
            if self.toggles_left[index] == 0:
                continue
            self.toggles_left[index] -= 1
            entity_id = sensor(index)
            self.states[entity_id] = "off" if self.states[entity_id] == "on" else "on"
            hass.states.async_set(entity_id, self.states[entity_id])
            await asyncio.sleep(self._rng.uniform(0.0, 0.004))


def verdict(sim: ChektSimulator, expected_events: int, expected_snapshots: int) -> dict[str, int]:
    accepted = [record for record in sim.events if record.status == 201 and record.outcome == "accepted"]
    per_camera: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in accepted:
        per_camera[record.body["camera_id"]].append(record.body)
    out_of_order = 0
    for bodies in per_camera.values():
        for previous, current in itertools.pairwise(bodies):
            if current["event_time"] < previous["event_time"] or current["event_status"] == previous["event_status"]:
                out_of_order += 1
    delivered = len(sim.accepted)
    snapshots = len({(c.event_id, c.seq) for c in sim.callbacks if c.upload_preceded and c.kind == "snapshot"})
    return {
        "E": expected_events,
        "D": delivered,
        "L": expected_events - delivered,
        "U": sim.duplicate_accepts,
        "O": out_of_order,
        "S": snapshots,
        "S_expected": expected_snapshots,
    }


async def test_soak(
    hass: HomeAssistant,
    soak_cloud: ChektSimulator,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = soak_cloud
    clock = ScaledClock(TIME_SCALE)
    monkeypatch.setattr("custom_components.chekt.outbox.Clock", lambda: clock)
    home = Household()
    sim.set_random_faults(
        rate=0.1,
        faults=[
            Fault("events", "status", status=500),
            Fault("events", "status", status=503),
            Fault("events", "rate_limit", retry_after=2),
            Fault("events", "drop"),
            Fault("events", "lose_reply"),
            Fault("events", "delay", seconds=0.3),
            Fault("upload", "status", status=503),
            Fault("upload", "delay", seconds=0.2),
            Fault("callback", "status", status=502),
        ],
        seed=SEED,
    )

    entry_id = await start_home(hass, sim, home.states, None)
    await home.toggle(hass, 300)  # through random faults

    await sim.stop()  # the outage begins ...
    outage_began = time.monotonic()
    await home.toggle(hass, 300)
    await asyncio.sleep(0.5)  # let the snapshots of the last alarms be taken and written

    # ... and Home Assistant restarts in the middle of it.
    await hass.async_stop()
    async with async_test_home_assistant(config_dir=hass.config.config_dir) as hass2:
        hass2.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        await start_home(hass2, sim, home.states, entry_id)
        await home.toggle(hass2, 200)
        outage_left = OUTAGE_SIMULATED.total_seconds() / TIME_SCALE - (time.monotonic() - outage_began)
        await asyncio.sleep(max(0.0, outage_left))
        await sim.start()  # the cloud is back
        while not home.done:
            await home.toggle(hass2, 50)

        expected_events = CAMERAS * TOGGLES_PER_CAMERA
        expected_snapshots = expected_events // 2
        await sim.wait_for(lambda: len(sim.accepted) >= expected_events, timeout=180)
        sim.set_random_faults(rate=0.0, faults=[], seed=SEED)
        await sim.wait_for(
            lambda: verdict(sim, expected_events, expected_snapshots)["S"] >= expected_snapshots, timeout=180
        )
        await hass2.async_block_till_done()
        result = verdict(sim, expected_events, expected_snapshots)
        with capsys.disabled():
            print(  # noqa: T201 -- the soak's one-line report
                f"\nsoak: {result['E']} events, delivered {result['D']}, lost {result['L']}, "
                f"duplicate accepts {result['U']}, out-of-order {result['O']}, "
                f"snapshots {result['S']}/{result['S_expected']}"
            )
        for entry in hass2.config_entries.async_entries(DOMAIN):
            await hass2.config_entries.async_unload(entry.entry_id)
        await hass2.async_stop()

    assert result["L"] == result["U"] == result["O"] == 0
    assert result["D"] == result["E"]
    assert result["S"] == result["S_expected"]
    assert not sim.malformed, sim.malformed
