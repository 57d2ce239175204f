"""The bench's home: a real Home Assistant in this process, N cameras with their alarm sensors, the CHeKT entry.

Everything is real except the cameras' pictures: Home Assistant's core and camera integration, the CHeKT
integration with its outbox, `Store` and media folder on disk, and HTTP over 127.0.0.1 to the CHeKT cloud
simulator (in this process, or in a process of its own when the memory of this one is being measured).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
import io
import json
import os
from pathlib import Path
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from homeassistant import loader
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame
from homeassistant.util import dt as dt_util
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_test_home_assistant

from custom_components.chekt.api import ChektClient
from custom_components.chekt.const import CONF_SNAPSHOT_INTERVAL, CONF_TOKEN_URL, DOMAIN
from custom_components.chekt.outbox import Outbox
from tests.common import FakeCamera, camera_subentry, setup_cameras
from tests.simulator import ChektSimulator

CLIENT_ID = "bench-client"
SECRET = "a-bench-secret-of-reasonable-length-0123456789"
AUDIENCE = "https://api.chekt.test/partner-events"
REPO_ROOT = Path(__file__).resolve().parent.parent
IDLE_POLL = 0.001


def make_snapshot(size: tuple[int, int] = (240, 180), seed: int = 7) -> bytes:
    """A JPEG with noise in it, so that it weighs what a small real snapshot weighs (about 15 KB).

    Small enough that 10,000 of them stay within the outbox's media budget (200 MB): none is evicted.
    """
    rng = random.Random(seed)  # noqa: S311 -- test pixels
    picture = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    output = io.BytesIO()
    picture.save(output, format="JPEG", quality=40)
    return output.getvalue()


class BenchCamera(FakeCamera):
    """A camera that answers as a real one does: later, and with a new picture object each time.

    Later: after the event loop has turned once, as if over the network, however fast. A new object: the memory
    figures count the pictures kept.
    """

    async def async_camera_image(self, width: int | None = None, height: int | None = None) -> bytes | None:
        """A fresh copy of the picture, on the next turn of the loop."""
        await asyncio.sleep(0)
        image = await super().async_camera_image(width, height)
        return None if image is None else bytes(bytearray(image))


class ExternalCloud:
    """The simulator in a process of its own (`python -m tests.simulator`), as the real cloud is elsewhere.

    Its memory and its work are not ours. With `arrivals`, it prints when each accepted event arrived
    (`time.perf_counter`, one clock for every process on Linux) with its body; `add_listener` hears of them.
    """

    def __init__(self, *, arrivals: bool = False) -> None:
        """Nothing runs until `start`."""
        self.port = 0
        self.base_url = ""
        self._arrivals = arrivals
        self._listeners: list[Callable[[float, dict[str, Any]], None]] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.base_url + "/oauth/token"

    def add_listener(self, listener: Callable[[float, dict[str, Any]], None]) -> Callable[[], None]:
        """Call `listener(arrived_at, body)` on the event loop for each accepted event."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def start(self) -> None:
        """Start listening (on the same port as before after a stop)."""
        command = [sys.executable, "-m", "tests.simulator", "--port", str(self.port), "--client-id", CLIENT_ID]
        command += ["--secret", SECRET, "--audience", AUDIENCE, *(["--arrivals"] if self._arrivals else [])]
        process = subprocess.Popen(  # noqa: ASYNC220, S603 -- started once per outage, output read below
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
        )
        assert process.stdout is not None
        line = ""
        while "api_url:" not in line:
            line = await asyncio.to_thread(process.stdout.readline)
            if not line:
                raise RuntimeError("the simulator process did not start")
        match = re.search(r"api_url:\s+(http://\S+)", line)
        assert match is not None
        self.base_url = match.group(1)
        self.port = int(self.base_url.rsplit(":", 1)[1])
        self._process = process
        if self._arrivals:
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, args=(process, loop), daemon=True, name="simulator arrivals").start()

    async def stop(self) -> None:
        """Stop: the cloud goes down."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            await asyncio.to_thread(process.wait)
            if process.stdout is not None and not self._arrivals:
                process.stdout.close()

    def _read(self, process: subprocess.Popen[str], loop: asyncio.AbstractEventLoop) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                if line.startswith("arrival "):
                    _, arrived, body = line.split(" ", 2)
                    loop.call_soon_threadsafe(self._heard, float(arrived), json.loads(body))

    def _heard(self, arrived: float, body: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(arrived, body)


@dataclass
class Home:
    """What a benchmark drives and watches."""

    hass: HomeAssistant
    sim: ChektSimulator | None
    cloud: ChektSimulator | ExternalCloud
    entry: MockConfigEntry
    alarm_entities: list[str]
    cameras: list[BenchCamera]
    image: bytes
    _values: dict[str, int] = field(default_factory=dict)

    @property
    def outbox(self) -> Outbox:
        """The loaded entry's outbox."""
        outbox: Outbox = self.entry.runtime_data.outbox
        return outbox

    @property
    def client(self) -> ChektClient:
        """The loaded entry's CHeKT client."""
        client: ChektClient = self.entry.runtime_data.client
        return client

    def trigger(self, index: int) -> None:
        """Alarm entity `index` fires: a binary sensor goes on, an event entity gets a new event."""
        entity_id = self.alarm_entities[index]
        if entity_id.startswith("event."):
            self._values[entity_id] = self._values.get(entity_id, 0) + 1
            moment = dt_util.utcnow().isoformat(timespec="microseconds")
            self.hass.states.async_set(entity_id, moment, {"event_type": "motion"})
        else:
            self.hass.states.async_set(entity_id, "on", {"device_class": "motion"})

    def clear(self, index: int) -> None:
        """A binary sensor goes off again (event entities have nothing to clear)."""
        entity_id = self.alarm_entities[index]
        if not entity_id.startswith("event."):
            self.hass.states.async_set(entity_id, "off", {"device_class": "motion"})

    async def load(self) -> None:
        """Set up the CHeKT entry (again)."""
        assert await self.hass.config_entries.async_setup(self.entry.entry_id)
        await self.hass.async_block_till_done()

    async def unload(self) -> None:
        """Unload the CHeKT entry."""
        assert await self.hass.config_entries.async_unload(self.entry.entry_id)
        await self.hass.async_block_till_done()

    @property
    def snapshots_taken(self) -> int:
        """How many pictures the cameras have given."""
        return sum(camera.requests for camera in self.cameras)

    def outbox_idle(self) -> bool:
        """Nothing left to send, upload, write or delete."""
        outbox = self.outbox
        return not outbox._records and not outbox.writing_snapshots and not outbox._series

    async def wait(self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
        """Poll `predicate` every millisecond until it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what or predicate} still false after {timeout:g} s")
            await asyncio.sleep(IDLE_POLL)

    async def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the outbox has delivered everything and the entities have caught up."""
        await self.wait(self.outbox_idle, timeout, "outbox idle")


def alarm_entity(domain: str, index: int) -> str:
    """The alarm entity of camera `index`."""
    return f"{domain}.bench_motion_{index:03d}" if domain == "binary_sensor" else f"{domain}.bench_button_{index:03d}"


def _entry(
    cloud: ChektSimulator | ExternalCloud, alarm_entities: list[str], snapshot_count: int, snapshot_interval: float
) -> MockConfigEntry:
    data = {
        "api_url": cloud.base_url,
        "token_url": cloud.token_url,
        "client_id": CLIENT_ID,
        "signing_key": SECRET,
        "audience": AUDIENCE,
    }
    subentries = [
        camera_subentry(
            f"camera.bench_{index:03d}",
            (entity_id,),
            location_id="BENCH",
            camera_id=f"CAM{index:03d}",
            snapshot_count=snapshot_count,
        )
        | {"subentry_id": f"bench-camera-{index:03d}"}
        for index, entity_id in enumerate(alarm_entities)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="CHeKT (bench)",
        unique_id=f"{CLIENT_ID}@{data[CONF_TOKEN_URL]}",
        data=data,
        options={CONF_SNAPSHOT_INTERVAL: snapshot_interval},
        subentries_data=subentries,
    )


@asynccontextmanager
async def own_home_assistant() -> AsyncIterator[HomeAssistant]:
    """A Home Assistant of our own with a configuration folder on disk, custom integrations enabled."""
    with tempfile.TemporaryDirectory(prefix="chekt-bench-") as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            frame.async_setup(hass)
            try:
                yield hass
            finally:
                for entry in hass.config_entries.async_entries():
                    await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_stop(force=True)


@asynccontextmanager
async def bench_home(
    *,
    cameras: int,
    snapshot_count: int = 1,
    snapshot_interval: float = 0.0,
    alarm_domain: str = "binary_sensor",
    load: bool = True,
    external_cloud: bool = False,
    arrivals: bool = False,
    hass: HomeAssistant | None = None,
    image: bytes | None = None,
) -> AsyncIterator[Home]:
    """A home with `cameras` mapped cameras, each alarmed by one entity, against a running cloud.

    With `hass` (a test's Home Assistant) that one is used; otherwise one of our own is started and stopped.
    `snapshot_interval` 0 takes a camera's snapshots back to back: the series' schedule is not our cost.
    """
    image = image if image is not None else make_snapshot()
    async with AsyncExitStack() as stack:
        cloud: ChektSimulator | ExternalCloud
        sim: ChektSimulator | None = None
        if external_cloud:
            cloud = ExternalCloud(arrivals=arrivals)
            await cloud.start()
            stack.push_async_callback(cloud.stop)
        else:
            cloud = sim = ChektSimulator(upload_ttl=3600)
            await sim.start()
            sim.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE)
            stack.push_async_callback(sim.stop)
        if hass is None:
            hass = await stack.enter_async_context(own_home_assistant())
        camera_entities = [BenchCamera(f"bench_{index:03d}", image) for index in range(cameras)]
        await setup_cameras(hass, *camera_entities)
        alarm_entities = [alarm_entity(alarm_domain, index) for index in range(cameras)]
        for entity_id in alarm_entities:
            if alarm_domain == "event":
                hass.states.async_set(entity_id, dt_util.utcnow().isoformat(), {"event_type": "motion"})
            else:
                hass.states.async_set(entity_id, "off", {"device_class": "motion"})
        entry = _entry(cloud, alarm_entities, snapshot_count, snapshot_interval)
        entry.add_to_hass(hass)
        home = Home(hass, sim, cloud, entry, alarm_entities, camera_entities, image)
        if load:
            await home.load()
            await home.client.authenticate()
        yield home
        if entry.state is ConfigEntryState.LOADED:
            await home.unload()
