"""Clips, recorded for real: a live H.264 stream over HTTP, Home Assistant's stream integration, the local cloud.

The camera of these tests is a real camera entity with `CameraEntityFeature.STREAM`; its `stream_source()` is an
MPEG-TS generated with PyAV at test time and served on 127.0.0.1 at real-time speed, as a camera would send it.
Home Assistant's stream integration records it (`Stream.async_record`, as `camera.record` does); the simulator
receives the MP4s, and the tests measure them by decoding them with PyAV.

Clips are a few seconds long (the short-clip length and the event-clip maximum are the entry's options), and the
stream integration is set up with 2 s segments of 0.5 s parts, so that recordings end close to when they are asked to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache, partial
import io
import logging
from pathlib import Path
import threading
from typing import Any

from aiohttp import web
import av
from homeassistant.components.camera import CameraEntityFeature
from homeassistant.components.stream.const import ATTR_STREAMS, DOMAIN as STREAM_DOMAIN
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.chekt as chekt_init
from custom_components.chekt import clips as clips_module, media_folder
from custom_components.chekt.api import EventStatus, EventType, MediaKind, UploadTarget
from custom_components.chekt.const import (
    CONF_CLIENT_ID,
    CONF_EVENT_CLIP_MAX,
    CONF_SHORT_CLIP_LENGTH,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    DOMAIN,
)
from custom_components.chekt.outbox import OutboxLimits
from custom_components.chekt.outgoing import OutgoingEvent
from custom_components.chekt.store import STORAGE_VERSION, Record, storage_key
from tests.common import FakeCamera, camera_subentry, setup_cameras
from tests.conftest import AUDIENCE, CLIENT_ID, SECRET
from tests.simulator import ChektSimulator, EventOutcome

MOTION = "binary_sensor.front_motion"
DOOR = "binary_sensor.front_door"
FPS = 10
KEY_FRAME_EVERY = 5  # frames: a key frame every 0.5 s, as the stream integration's parts are 0.5 s here
SIZE = (160, 120)
VIDEO_SECONDS = 90
ROOT = Path(__file__).parent.parent


# --- a live camera ---


@dataclass(frozen=True, slots=True)
class LiveVideo:
    """An MPEG-TS and, for each of its packets, when it is due and where its bytes end."""

    data: bytes
    schedule: list[tuple[float, int]]


@cache
def live_video() -> LiveVideo:
    """90 s of H.264 (a colour changing every frame, a bar growing) in MPEG-TS, as a camera would stream it."""
    output = io.BytesIO()
    with av.open(output, "w", format="mpegts") as container:
        stream = container.add_stream(
            "libx264",
            rate=FPS,
            options={"preset": "ultrafast", "tune": "zerolatency", "g": str(KEY_FRAME_EVERY), "sc_threshold": "0"},
        )
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for index in range(VIDEO_SECONDS * FPS):
            image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
            image[:, :, 0] = index * 7 % 256
            image[:, : index % SIZE[0] + 1, 1] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = output.getvalue()
    with av.open(io.BytesIO(data), format="mpegts") as container:
        starts = [
            (float(packet.pts * packet.time_base), packet.pos)
            for packet in container.demux()
            if packet.pts is not None and packet.time_base is not None and packet.pos is not None
        ]
    # Packet i may go once its time has come; its bytes end where packet i + 1 starts.
    ends = [position for _, position in starts[1:]] + [len(data)]
    return LiveVideo(data, [(moment - starts[0][0], end) for (moment, _), end in zip(starts, ends, strict=True)])


class LiveSource:
    """Serves `live_video()` over HTTP at real-time speed from the moment each client connects.

    With `fail_after`, the connection ends after that many seconds of video and every later request is refused:
    a camera that goes away in the middle of a recording. `delay` holds back the first video that long (a slow
    camera).
    """

    def __init__(self) -> None:
        self.delay = 0.0
        self.fail_after: float | None = None
        self.failed = False
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/live.ts", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/live.ts"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if self.failed:
            return web.Response(status=503)
        self.connections += 1
        video = live_video()
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        began, sent = loop.time() + self.delay, 0
        try:
            for moment, end in video.schedule:
                if self.fail_after is not None and moment >= self.fail_after:
                    self.failed = True
                    break
                if (delay := began + moment - loop.time()) > 0:
                    await asyncio.sleep(delay)
                await response.write(video.data[sent:end])
                sent = end
            await response.write_eof()
        except ConnectionError:
            pass  # the stream integration hung up: its recording is over
        return response


class StreamCamera(FakeCamera):
    """A camera that can stream: snapshots as FakeCamera, and `stream_source()` for the stream integration."""

    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, name: str, live: LiveSource) -> None:
        super().__init__(name)
        self.live = live
        self.source_error: str | None = None

    async def stream_source(self) -> str | None:
        if self.source_error is not None:
            raise HomeAssistantError(self.source_error)
        return self.live.url


# --- fixtures ---


@pytest.fixture(autouse=True)
def quick_clips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short allowances: the test stream starts within a second, and its clips are a few seconds long."""
    monkeypatch.setattr(clips_module, "START_ALLOWANCE", 1.0)
    monkeypatch.setattr(clips_module, "EVENT_CLIP_MIN_SECONDS", 2.0)
    monkeypatch.setattr(clips_module, "UPLOAD_ALLOWANCE", 3.0)


@pytest.fixture
def upload_ttl() -> float:
    """How long the simulator's pre-signed upload URLs stay valid."""
    return 300.0


@pytest.fixture
async def simulator(socket_enabled: None, upload_ttl: float) -> AsyncIterator[ChektSimulator]:
    """The local CHeKT cloud (as in conftest.py), with upload URLs that live `upload_ttl` seconds."""
    sim = ChektSimulator(upload_ttl=upload_ttl)
    await sim.start()
    sim.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE)
    try:
        yield sim
    finally:
        await sim.stop()
    assert not sim.malformed, sim.malformed


@pytest.fixture
async def stream(hass: HomeAssistant) -> AsyncIterator[None]:
    """Home Assistant's stream integration with 2 s segments of 0.5 s parts; every stream worker ends with the test."""
    assert await async_setup_component(
        hass, STREAM_DOMAIN, {STREAM_DOMAIN: {"ll_hls": True, "segment_duration": 2, "part_duration": 0.5}}
    )
    yield
    for each in hass.data[STREAM_DOMAIN][ATTR_STREAMS]:
        for output in list(each.outputs().values()):  # an output's removal cancels its idle timer
            await each.remove_provider(output)
        await each.stop()
    assert not stream_workers()


@pytest.fixture
async def live(socket_enabled: None) -> AsyncIterator[LiveSource]:
    source = LiveSource()
    await source.start()
    yield source
    await source.stop()


@pytest.fixture
async def camera(hass: HomeAssistant, stream: None, live: LiveSource) -> StreamCamera:
    front = StreamCamera("front", live)
    await setup_cameras(hass, front)
    return front


# --- helpers ---


def stream_workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stream_worker" and thread.is_alive()]


async def load_entry(
    hass: HomeAssistant, data: dict[str, Any], *subentries: Any, short: float = 3, event_max: float = 30
) -> MockConfigEntry:
    """Add and set up a CHeKT entry whose clips are a few seconds long."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"CHeKT ({data[CONF_CLIENT_ID]})",
        unique_id=f"{data[CONF_CLIENT_ID]}@{data[CONF_TOKEN_URL]}",
        data=data,
        options={
            CONF_SNAPSHOT_INTERVAL: 0.05,
            CONF_TROUBLE_DELAY: 60,
            CONF_SHORT_CLIP_LENGTH: short,
            CONF_EVENT_CLIP_MAX: event_max,
        },
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def front(**overrides: Any) -> Any:
    return camera_subentry("camera.front", (MOTION, DOOR), **overrides)


def bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    return [record.body for record in sim.events if record.outcome is EventOutcome.ACCEPTED]


def uploads_of(sim: ChektSimulator, kind: str) -> list[Any]:
    return [upload for upload in sim.uploads if upload.kind.value == kind]


def callbacks_of(sim: ChektSimulator, kind: str) -> list[Any]:
    return [callback for callback in sim.callbacks if callback.kind.value == kind]


def seconds_of(mp4: bytes) -> float:
    """How long an MP4 plays: its decoded frames, at the test stream's frame rate."""
    with av.open(io.BytesIO(mp4), format="mp4") as container:
        frames = sum(1 for _ in container.decode(video=0))
    return frames / FPS


def log_lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == level and record.name.startswith("custom_components.chekt") and text in record.getMessage()
    ]


async def files_left(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    """The files in the entry's media folder, once the deletions under way are done."""
    folder = media_folder(hass, entry.entry_id)

    def listing() -> list[str]:
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []

    for _ in range(100):
        await hass.async_block_till_done(wait_background_tasks=True)
        if not (names := await hass.async_add_executor_job(listing)):
            break
        await asyncio.sleep(0.02)
    return names


async def wait_for_clip(hass: HomeAssistant, sim: ChektSimulator, kind: str, count: int = 1) -> None:
    await sim.wait_for(lambda: len(callbacks_of(sim, kind)) >= count, timeout=30)
    await hass.async_block_till_done()


def assert_valid_clip(sim: ChektSimulator, kind: str) -> float:
    """The clip's upload is a real MP4 and its callback followed it; returns how long it plays."""
    [upload] = uploads_of(sim, kind)
    [callback] = callbacks_of(sim, kind)
    assert (upload.content_type, upload.valid_media) == ("video/mp4", True)
    assert upload.data[4:8] == b"ftyp"
    assert callback.upload_preceded
    assert callback.status == 200
    assert callback.received_at >= upload.received_at
    return seconds_of(upload.data)


# --- the clips ---


async def test_short_clip_is_recorded_from_the_stream_and_uploaded(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: StreamCamera
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True), short=3)

    hass.states.async_set(MOTION, STATE_ON)
    await wait_for_clip(hass, simulator, "short_mp4")

    [active] = bodies(simulator)
    assert (active["upload_short_mp4"], active["upload_event_mp4"]) == (True, False)
    seconds = assert_valid_clip(simulator, "short_mp4")
    assert 2.5 <= seconds <= 4.0, seconds
    assert len(uploads_of(simulator, "snapshot")) == 1  # the snapshot goes as always
    assert await files_left(hass, entry) == []  # uploaded, then deleted; no recording left behind
    assert not stream_workers()  # the recording was the stream's only output: its worker stopped with it


async def test_event_clip_lasts_until_the_alarm_ends_and_the_short_clip_comes_from_the_same_recording(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(DOOR, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True, upload_event_mp4=True), short=2)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await asyncio.sleep(5)
    hass.states.async_set(MOTION, STATE_OFF)
    await wait_for_clip(hass, simulator, "event_mp4")
    await wait_for_clip(hass, simulator, "short_mp4")

    assert [(b["event_status"], b["upload_event_mp4"]) for b in bodies(simulator)] == [
        ("active", True),
        ("inactive", False),
    ]
    event_seconds = assert_valid_clip(simulator, "event_mp4")
    short_seconds = assert_valid_clip(simulator, "short_mp4")
    assert 4.0 <= event_seconds <= 6.0, event_seconds
    assert 1.5 <= short_seconds <= 3.0, short_seconds
    assert camera.live.connections == 1  # one recording for both clips
    assert await files_left(hass, entry) == []


async def test_event_clip_is_capped_by_its_maximum(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hass.states.async_set(MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_event_mp4=True, snapshot_count=0), event_max=3)

    hass.states.async_set(MOTION, STATE_ON)  # and it stays on
    await wait_for_clip(hass, simulator, "event_mp4")

    seconds = assert_valid_clip(simulator, "event_mp4")
    assert 2.0 <= seconds <= 3.5, seconds
    assert log_lines(caplog, logging.INFO, "ends after 3 s, its longest") != []


@pytest.mark.parametrize("upload_ttl", [13.0])
async def test_event_clip_ends_in_time_for_its_upload_url(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hass.states.async_set(MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_event_mp4=True, snapshot_count=0), event_max=120)

    hass.states.async_set(MOTION, STATE_ON)  # and it stays on, longer than the URL lives
    await wait_for_clip(hass, simulator, "event_mp4")

    # URL valid 13 s, uploads stop 5 s before (the outbox's margin), the clip 3 s before that (UPLOAD_ALLOWANCE).
    seconds = assert_valid_clip(simulator, "event_mp4")
    assert 3.5 <= seconds <= 5.5, seconds
    [capped] = log_lines(caplog, logging.INFO, "so that it can be uploaded before its URL expires")
    assert capped.startswith("The event clip of event")


async def test_second_alarm_joins_the_recording_of_the_first(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(DOOR, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_event_mp4=True, snapshot_count=0), event_max=30)

    hass.states.async_set(MOTION, STATE_ON)
    await asyncio.sleep(3)
    hass.states.async_set(DOOR, STATE_ON)  # a second alarm/active of the same camera, while it records
    await asyncio.sleep(3)
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(DOOR, STATE_OFF)  # the alarm ends: both event clips end
    await wait_for_clip(hass, simulator, "event_mp4", count=2)

    assert [b["event_status"] for b in bodies(simulator)] == ["active", "active", "inactive"]
    first, second = (uploads_of(simulator, "event_mp4")[0], uploads_of(simulator, "event_mp4")[1])
    by_event = {upload.event_id: seconds_of(upload.data) for upload in (first, second)}
    first_id, second_id = bodies(simulator)[0]["event_id"], bodies(simulator)[1]["event_id"]
    assert 5.0 <= by_event[first_id] <= 7.0, by_event
    assert 2.5 <= by_event[second_id] <= 4.5, by_event  # cut from the shared recording, from its key frame
    assert all(upload.valid_media for upload in (first, second))
    assert camera.live.connections == 1


# --- when there is no clip to be had ---


async def test_camera_that_cannot_stream_sends_the_event_and_snapshot_without_clips(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    stream: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup_cameras(hass, FakeCamera("front"))
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set("binary_sensor.ghost_motion", STATE_OFF)
    ghost = camera_subentry("camera.ghost", ("binary_sensor.ghost_motion",), upload_short_mp4=True, snapshot_count=0)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True, upload_event_mp4=True), ghost)

    hass.states.async_set(MOTION, STATE_ON)
    hass.states.async_set("binary_sensor.ghost_motion", STATE_ON)  # a camera that is not there (any more)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1 and len(bodies(simulator)) == 2)
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records)

    assert sorted((b["upload_short_mp4"], b["upload_event_mp4"]) for b in bodies(simulator)) == [
        (True, False),
        (True, True),
    ]
    assert [upload.kind.value for upload in simulator.uploads] == ["snapshot"]
    warnings = log_lines(caplog, logging.WARNING, "No clip for event")
    assert len(warnings) == 2
    assert any(
        w.endswith(
            "camera.front cannot stream (it does not support CameraEntityFeature.STREAM), so it cannot record clips"
        )
        for w in warnings
    )
    assert any(w.endswith("camera.ghost is not a camera Home Assistant knows") for w in warnings)
    assert not stream_workers()


async def test_stream_that_fails_mid_recording_gives_a_shorter_clip_and_says_so(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera.live.fail_after = 3.0  # the camera goes away 3 s into a 5 s clip, and does not come back
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True), short=5)

    hass.states.async_set(MOTION, STATE_ON)
    await wait_for_clip(hass, simulator, "short_mp4")

    assert [b["event_status"] for b in bodies(simulator)] == ["active"]
    assert len(callbacks_of(simulator, "snapshot")) == 1
    assert camera.live.failed
    assert 1.5 <= assert_valid_clip(simulator, "short_mp4") <= 3.0  # what came before the failure
    [short] = log_lines(caplog, logging.WARNING, "The short clip of event")
    assert "of the 5.0 s asked: the camera's stream failed during the recording" in short
    assert "Error from stream worker" in caplog.text  # the stream integration's own account of it
    assert await files_left(hass, entry) == []


async def test_stream_that_gives_nothing_sends_the_event_and_snapshot_without_a_clip(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera.live.fail_after = 0.0  # the camera answers, but sends no video
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True), short=2)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(callbacks_of(simulator, "snapshot")) == 1)
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records, timeout=30)

    assert [b["event_status"] for b in bodies(simulator)] == ["active"]
    assert uploads_of(simulator, "short_mp4") == []
    [nothing] = log_lines(caplog, logging.WARNING, "captured nothing")
    assert nothing.startswith("The recording of camera.front captured nothing (its stream failed;")
    assert nothing.endswith("; no short clip of event " + bodies(simulator)[0]["event_id"])
    assert await files_left(hass, entry) == []


async def test_alarm_that_ends_before_its_short_clip_is_done(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hass.states.async_set(MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_short_mp4=True), short=3)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(callbacks_of(simulator, "snapshot")) == 1)
    hass.states.async_set(MOTION, STATE_OFF)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    await wait_for_clip(hass, simulator, "short_mp4")

    inactive = next(r for r in simulator.events if r.body and r.body["event_status"] == "inactive")
    [clip] = uploads_of(simulator, "short_mp4")
    assert inactive.received_at < clip.received_at  # the end of the alarm did not wait for the clip
    assert 2.5 <= assert_valid_clip(simulator, "short_mp4") <= 4.0  # nor was the clip cut short
    [ended] = log_lines(caplog, logging.INFO, "before its short clip was done")
    assert ended.startswith("The alarm of camera.front ended")


async def test_discarded_event_stops_its_recording_and_keeps_nothing(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    simulator.disarmed_locations.add("LOC1")
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_event_mp4=True), event_max=30)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.events) == 1)
    await simulator.wait_for(lambda: not stream_workers() and not entry.runtime_data.outbox._clips._sessions)
    await hass.async_block_till_done()

    assert simulator.events[0].response is not None
    assert simulator.events[0].response["status"] == "discarded"
    assert simulator.uploads == []
    assert log_lines(caplog, logging.INFO, "needs no event_mp4 any more; its recording stops") != []
    assert "Recording failed to capture anything" not in caplog.text  # stopped after its first video, not before
    assert await files_left(hass, entry) == []


async def test_a_restart_keeps_the_clip_recorded_so_far_and_uploads_it_after(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    hass_storage: dict[str, Any],
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_event_mp4=True, snapshot_count=0), event_max=60)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await asyncio.sleep(3.5)
    await simulator.stop()  # the cloud is unreachable too: the clip cannot go before the restart
    assert await hass.config_entries.async_unload(entry.entry_id)  # Home Assistant stops mid-event
    await hass.async_block_till_done()

    [stored] = hass_storage[storage_key(entry.entry_id)]["data"]["records"]
    assert list(stored["clips"]) == ["event_mp4"]
    assert await files_left(hass, entry) == [stored["clips"]["event_mp4"]]
    assert simulator.uploads == []
    assert not stream_workers()

    await simulator.start()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_clip(hass, simulator, "event_mp4")
    assert 2.0 <= assert_valid_clip(simulator, "event_mp4") <= 4.0
    assert await files_left(hass, entry) == []


async def test_look_back_comes_from_a_preloaded_stream(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clips_module, "CLIP_LOOKBACK", 2)
    preloaded = await camera.async_create_stream()  # what the camera's "Preload stream" option does
    assert preloaded is not None
    preloaded.add_provider("hls")
    await preloaded.start()
    await asyncio.sleep(4.5)  # a few segments are kept
    hass.states.async_set(MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_short_mp4=True, snapshot_count=0), short=2)

    hass.states.async_set(MOTION, STATE_ON)
    await wait_for_clip(hass, simulator, "short_mp4")

    # 2 s asked after the alarm, and what the stream held before it: whole segments of 2 s.
    assert 4.0 <= assert_valid_clip(simulator, "short_mp4") <= 7.0
    assert len(stream_workers()) == 1  # the preloaded stream goes on after the recording
    assert camera.live.connections == 1


@pytest.fixture
def slow_camera(camera: StreamCamera, monkeypatch: pytest.MonkeyPatch) -> StreamCamera:
    """A camera whose first video comes 1.5 s after it is asked, given the default time to start."""
    camera.live.delay = 1.5
    monkeypatch.setattr(clips_module, "START_ALLOWANCE", 3.0)
    return camera


async def test_the_next_alarm_waits_for_a_recording_being_stopped(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    slow_camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera = slow_camera
    caplog.set_level(logging.INFO)
    simulator.disarmed_locations.add("LOC1")
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(DOOR, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_short_mp4=True, snapshot_count=0), short=2)

    hass.states.async_set(MOTION, STATE_ON)  # discarded: its recording stops, once it has its first video
    await simulator.wait_for(lambda: len(simulator.events) == 1)
    simulator.disarmed_locations.clear()
    hass.states.async_set(DOOR, STATE_ON)  # meanwhile, a second alarm of the camera: it waits for the first
    await wait_for_clip(hass, simulator, "short_mp4")

    [discarded, accepted] = simulator.events
    assert discarded.outcome is EventOutcome.DISCARDED
    assert accepted.outcome is EventOutcome.ACCEPTED
    [clip] = uploads_of(simulator, "short_mp4")
    assert clip.event_id == accepted.event_id
    assert 1.5 <= assert_valid_clip(simulator, "short_mp4") <= 3.0
    # Usually a recording each; on a loaded machine the second alarm can still join the first recording before
    # it is stopped (the join path, tested on its own below). Either way the accepted event gets its clip.
    assert camera.live.connections in (1, 2)
    assert "Recording failed to capture anything" not in caplog.text


async def test_an_event_clip_asked_by_the_action_during_a_short_clip_ends_with_it(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hass.states.async_set(MOTION, STATE_OFF)
    await load_entry(hass, entry_data, front(upload_short_mp4=True, snapshot_count=0), short=3)

    hass.states.async_set(MOTION, STATE_ON)  # a recording of 3 s for the short clip
    await asyncio.sleep(2)
    await hass.services.async_call(
        DOMAIN,
        "send_event",
        {"camera_entity_id": "camera.front", "upload_event_mp4": True, "upload_short_mp4": False},
        blocking=True,
    )
    await wait_for_clip(hass, simulator, "event_mp4")
    await wait_for_clip(hass, simulator, "short_mp4")

    assert 2.5 <= assert_valid_clip(simulator, "short_mp4") <= 3.5
    assert 1.0 <= assert_valid_clip(simulator, "event_mp4") <= 2.5  # the rest of that recording
    [joined] = log_lines(caplog, logging.INFO, "was already recording a shorter clip")
    assert joined.startswith("camera.front was already recording a shorter clip; the event clip of event ")
    assert camera.live.connections == 1


async def test_a_camera_already_recording_for_someone_else(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True), short=2)
    tmp_path = Path(hass.config.path("theirs"))
    hass.config.allowlist_external_dirs.add(hass.config.path())
    busy = await camera.async_create_stream()
    assert busy is not None
    theirs = hass.async_create_task(busy.async_record(str(tmp_path / "theirs.mp4"), duration=3, lookback=0))
    await asyncio.sleep(0.1)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records)
    await theirs

    assert [upload.kind.value for upload in simulator.uploads] == ["snapshot"]
    [busy_line] = log_lines(caplog, logging.WARNING, "could not record clips")
    assert busy_line.startswith("camera.front could not record clips: Stream already recording to ")
    assert await hass.async_add_executor_job((tmp_path / "theirs.mp4").is_file)  # theirs was left alone


async def test_a_camera_without_a_stream_source_or_without_the_stream_integration(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = LiveSource()  # never started: its URL is empty, so the camera has no stream source
    camera = StreamCamera("front", nowhere)
    await setup_cameras(hass, camera)
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True))

    hass.states.async_set(MOTION, STATE_ON)  # the stream integration is not loaded
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records and len(simulator.callbacks) == 1)
    assert await async_setup_component(hass, STREAM_DOMAIN, {})
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(MOTION, STATE_ON)  # loaded now, but the camera has no source
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records and len(simulator.callbacks) == 2)
    camera.source_error = "the camera refused"
    hass.states.async_set(MOTION, STATE_OFF)
    hass.states.async_set(MOTION, STATE_ON)  # and now its source cannot be had
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records and len(simulator.callbacks) == 3)

    assert [upload.kind.value for upload in simulator.uploads] == ["snapshot", "snapshot", "snapshot"]
    [not_loaded] = log_lines(caplog, logging.WARNING, "No clip for event")
    assert not_loaded.endswith(
        "the stream integration is not loaded (add `stream:` or `default_config:` to configuration.yaml)"
    )
    assert log_lines(caplog, logging.WARNING, "No clip from camera.front: the camera has no stream source now")
    assert log_lines(
        caplog, logging.WARNING, "No clip from camera.front: its stream cannot be opened (the camera refused)"
    )


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chekt_init, "OutboxLimits", partial(OutboxLimits, media_budget_bytes=3000))


@pytest.mark.usefixtures("small_budget")
async def test_a_clip_larger_than_the_media_budget_is_dropped(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: StreamCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hass.states.async_set(MOTION, STATE_OFF)
    entry = await load_entry(hass, entry_data, front(upload_short_mp4=True), short=2)

    hass.states.async_set(MOTION, STATE_ON)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records, timeout=20)

    assert [upload.kind.value for upload in simulator.uploads] == ["snapshot"]
    [dropped] = log_lines(caplog, logging.WARNING, "larger than the whole media budget (3000 bytes); dropped")
    assert dropped.startswith("The short clip of event")
    assert await files_left(hass, entry) == []


async def test_a_clip_lost_with_a_restart_is_reported_and_its_upload_given_up(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data=entry_data, subentries_data=[front(upload_short_mp4=True)])
    entry.add_to_hass(hass)
    event = OutgoingEvent(
        source="subentry",
        event_type=EventType.ALARM,
        event_status=EventStatus.ACTIVE,
        event_time=dt_util.utcnow(),
        location_id="LOC1",
        camera_id="CAM-front",
        upload_short_mp4=True,
        camera_entity_id="camera.front",
    )
    url = f"{simulator.base_url}/uploads/17/short_mp4/0?expires=9999999999&signature=x"
    target = UploadTarget(MediaKind.SHORT_MP4, upload_put_url=url, callback_put_url=url)
    now = dt_util.utcnow()
    record = Record(event_id="17", event=event, created_at=now, targets=[target], accepted_at=now)
    hass_storage[storage_key(entry.entry_id)] = {
        "version": STORAGE_VERSION,
        "key": storage_key(entry.entry_id),
        "data": {"records": [record.to_dict()]},
    }

    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: not entry.runtime_data.outbox._records)

    assert simulator.uploads == []
    [lost] = log_lines(caplog, logging.WARNING, "was not recorded")
    assert lost == "The short_mp4 of event 17 was not recorded (Home Assistant restarted while it was being recorded?)"


# --- the pieces ---


def test_an_unreadable_recording_gives_no_clip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    recording = folder / ".recording_1_camera.front.mp4"
    recording.write_bytes(b"\x00\x00\x00\x18ftypisom but nothing else")
    cuts = [clips_module._Cut("1_short_mp4.mp4", 0.0, 2.0), clips_module._Cut("1_event_mp4.mp4", 0.0, None)]

    assert clips_module._probe(recording) is None
    assert clips_module._cut_all(recording, folder, cuts) == [None, None]
    assert sorted(path.name for path in folder.iterdir()) == []  # the recording became the event clip, then went
    assert len([r for r in caplog.records if "Could not make" in r.getMessage()]) == 2


def test_a_record_keeps_its_clips_and_reads_records_without_any() -> None:
    event = OutgoingEvent(
        source="subentry-1",
        event_type=EventType.ALARM,
        event_status=EventStatus.ACTIVE,
        event_time=dt_util.utcnow(),
        location_id="LOC1",
        camera_id="CAM-front",
        upload_event_mp4=True,
    )
    record = Record(
        event_id="17", event=event, created_at=dt_util.utcnow(), clips={MediaKind.EVENT_MP4: "17_event_mp4.mp4"}
    )
    stored = record.to_dict()
    assert stored["clips"] == {"event_mp4": "17_event_mp4.mp4"}
    assert Record.from_dict(stored) == record
    del stored["clips"]  # as stored before clips existed
    assert Record.from_dict(stored).clips == {}


async def test_stream_requirements_are_those_core_pins(hass: HomeAssistant) -> None:
    pins = {
        name.lower(): version
        for name, _, version in (
            line.partition("==") for line in (ROOT / "requirements_test.txt").read_text().splitlines() if "==" in line
        )
    }
    for requirement in (await async_get_integration(hass, STREAM_DOMAIN)).requirements:
        name, version = requirement.split("==")
        assert pins.get(name.lower()) == version, requirement
