"""Clips: the short and the event-long MP4 of a camera's alarm, recorded with Home Assistant's stream integration.

How a clip is made
- An `alarm`/`active` that asks for clips opens a *window* per clip the moment the outbox takes it (in parallel
  with its request, like the first snapshot): `short_mp4` for the short-clip length, `event_mp4` until the camera's
  alarm ends (the `alarm`/`inactive` of the same source reaches the outbox), but at least EVENT_CLIP_MIN_SECONDS, at
  most the event-clip maximum, and never so long that its pre-signed upload URL would expire before the upload.
- Recording is `Stream.async_record` (what the `camera.record` action does). A camera's stream makes one recording
  at a time, so the windows of one camera share a *session*: one recording, from which each clip is cut afterwards
  by stream copy (no re-encoding). A session started for short clips only is as long as the short clip (counted by
  the stream integration from the first video it gets); a session with an event clip is given the event-clip
  maximum and stopped as soon as its last window closes, by removing its own recorder output — never by stopping
  the camera's shared stream, which would cut off anyone watching. A window that opens while its camera records
  joins that session, up to the session's end.
- Look-back: the stream integration prepends up to CLIP_LOOKBACK seconds, but only from an HLS stream that already
  runs (the camera's "Preload stream" option, or someone watching).
- Trade-off: a short clip recorded in the same session as an event clip is ready when that session ends.
- Files are recorded into the outbox's media folder (allow-listed for the stream integration while the entry is
  loaded) under hidden names, and handed to the outbox as `<event_id>_<kind>.mp4`, inside the media budget.
- Whatever goes wrong (a camera that cannot stream, no stream source, a stream that fails, nothing captured, a camera
  already recording for someone else) is logged, and the event goes without that clip: the event and its
  snapshots never wait for a clip that cannot come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
import itertools
import math
from pathlib import Path
import shutil
from typing import TYPE_CHECKING

from homeassistant.components.camera.const import DATA_COMPONENT, CameraEntityFeature
from homeassistant.components.stream.const import DOMAIN as STREAM_DOMAIN, HLS_PROVIDER, RECORDER_PROVIDER
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_state_change_event

from .api import EventStatus, EventType, MediaKind
from .const import DEFAULT_EVENT_CLIP_MAX, DEFAULT_SHORT_CLIP_LENGTH, LOGGER
from .media import MediaFile, MediaStore, TaskStarter
from .outgoing import OutgoingEvent

if TYPE_CHECKING:
    from homeassistant.components.stream import Stream
    from homeassistant.components.stream.core import StreamOutput

# Seconds of look-back asked of the stream integration (given only while the camera's HLS stream already runs).
CLIP_LOOKBACK = 5
# An alarm that ends sooner still gets an event clip this long.
EVENT_CLIP_MIN_SECONDS = 5.0
# How long a camera's stream may take to deliver its first video (connecting, probing): a short clip's time counts
# from its first video, and a recording that got none this long after its short clip's length is given up.
START_ALLOWANCE = 3.0
# How long after its start a recording stopped before it got any video may wait for some (see _stop_recorder).
FIRST_VIDEO_WAIT = 5.0
FIRST_VIDEO_POLL = 0.1
# Seconds kept between the end of a clip and its upload URL's expiry, for writing and uploading it.
UPLOAD_ALLOWANCE = 30.0
# How long unloading waits for recordings to be stopped and written.
STOP_WAIT = 10.0
# A clip shorter than asked by more than this (and by more than a quarter) is reported.
SHORTFALL_TOLERANCE = 2.0

CLIP_CONTAINER = "mp4"
DEFAULT_TIME_BASE = Fraction(1, 90000)

type ClipCallback = Callable[[str, MediaKind, str, list[MediaFile]], None]


@dataclass(frozen=True, slots=True)
class ClipSettings:
    """The entry's clip options, in seconds."""

    short_seconds: float = DEFAULT_SHORT_CLIP_LENGTH
    event_max_seconds: float = DEFAULT_EVENT_CLIP_MAX


def clip_name(event_id: str, kind: MediaKind) -> str:
    """The file name of a clip in the media folder; it starts with the event id, which names its owner."""
    return f"{event_id}_{kind.value}.mp4"


@dataclass(eq=False, slots=True, kw_only=True)
class _Window:
    """The stretch of time one clip of one event covers (loop time), and whoever waits for the clip."""

    event_id: str
    source: str
    camera: str
    kind: MediaKind
    opened: float
    limit: float
    done: asyncio.Future[None]
    # The latest end its upload URL allows, once known.
    deadline: float = math.inf
    # Its limit is still its longest (the event-clip maximum), not an earlier end for a reason already logged.
    at_longest: bool = True
    closed: float | None = None
    wanted: bool = True
    timer: asyncio.TimerHandle | None = None
    session: _Session | None = None

    @property
    def label(self) -> str:
        return f"{'short clip' if self.kind is MediaKind.SHORT_MP4 else 'event clip'} of event {self.event_id}"


@dataclass(eq=False, slots=True, kw_only=True)
class _Session:
    """One recording of one camera, shared by the windows that overlap it."""

    camera: str
    path: Path
    duration: int
    # When the recording ends at the latest (loop time): `duration` after its first video, once that came.
    end: float
    windows: list[_Window] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stream: Stream | None = None
    started: float | None = None
    # When the first video reached the recording (loop time, less the parts it took to notice).
    first_video: float | None = None
    lookback: float = 0.0
    # The camera went unavailable while recording: its stream failed (the stream integration retries it).
    failed: bool = False
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class _Cut:
    """What to take out of a session's recording for one window: seconds from its start, None for its end."""

    name: str
    start: float
    end: float | None


class ClipRecorder:
    """Records the clips of one config entry's events; see the module's description."""

    def __init__(
        self,
        hass: HomeAssistant,
        media: MediaStore,
        settings: ClipSettings,
        *,
        start_task: TaskStarter,
        on_clip: ClipCallback,
    ) -> None:
        """Nothing is recorded before `async_start`."""
        self._hass = hass
        self._media = media
        self._settings = settings
        self._start_task = start_task
        self._on_clip = on_clip
        self._sessions: dict[str, _Session] = {}
        self._queued: dict[str, list[_Window]] = {}
        self._windows: dict[str, list[_Window]] = {}
        self._numbers = itertools.count(1)
        self._allowed: str | None = None
        self._stopped = False

    # Life cycle -----------------------------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Let the stream integration write into the media folder."""
        # Resolved as Home Assistant resolves the paths it checks; the folder itself may not exist yet.
        self._allowed = str(await self._hass.async_add_executor_job(self._media.folder.resolve))
        self._hass.config.allowlist_external_dirs.add(self._allowed)

    async def async_stop(self) -> None:
        """Unload: end every recording now and keep what it captured (it is uploaded after the restart)."""
        self._stopped = True
        sessions = list(self._sessions.values())
        for session in sessions:
            if any(window.closed is None for window in session.windows):
                LOGGER.info("Unloading: the recording of %s ends here; its clips keep what it captured", session.camera)
            for window in session.windows:
                self._close(window)
        tasks = [session.task for session in sessions if session.task is not None and not session.task.done()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_WAIT)
            if late:
                LOGGER.warning("%d clip recordings did not end in time; their clips are lost", len(late))
        if self._allowed is not None:
            self._hass.config.allowlist_external_dirs.discard(self._allowed)

    # What the outbox tells ------------------------------------------------------------------------------------

    @callback
    def on_event(self, event_id: str, event: OutgoingEvent) -> None:
        """An event entered the outbox: start the clips it asks for; an alarm's `inactive` ends its event clips."""
        if event.event_type is EventType.ALARM and event.event_status is EventStatus.INACTIVE:
            self._alarm_ended(event.source)
        asks = ((MediaKind.SHORT_MP4, event.upload_short_mp4), (MediaKind.EVENT_MP4, event.upload_event_mp4))
        kinds = [kind for kind, asked in asks if asked]
        camera = event.camera_entity_id
        if not kinds or camera is None or self._stopped:
            return
        now = self._hass.loop.time()
        windows = [self._new_window(event_id, event.source, camera, kind, now) for kind in kinds]
        self._windows[event_id] = windows
        if (problem := self._problem(camera)) is not None:
            LOGGER.warning("No clip for event %s: %s", event_id, problem)
            for window in windows:
                window.closed = now
                _settle(window)
            return
        session = self._sessions.get(camera)
        if session is None:
            self._start_session(camera, windows)
        elif session.stop.is_set():
            self._queued.setdefault(camera, []).extend(windows)
        else:
            self._join(session, windows)

    async def async_clip(self, event_id: str, kind: MediaKind, seconds_left: float) -> None:
        """Wait until the clip of `kind` of the event is made or known not to come.

        `seconds_left` is how long its upload URL still works: a clip still recording is ended in time to be
        uploaded. The outbox hears of the file itself through `on_clip`, before this returns.
        """
        window = next((window for window in self._windows.get(event_id, ()) if window.kind is kind), None)
        if window is None:
            LOGGER.warning(
                "The %s of event %s was not recorded (Home Assistant restarted while it was being recorded?)",
                kind.value,
                event_id,
            )
            return
        if window.closed is None:
            latest = window.deadline = self._hass.loop.time() + seconds_left - UPLOAD_ALLOWANCE
            if latest < window.limit:
                LOGGER.info(
                    "The %s ends %.0f s after it started, so that it can be uploaded before its URL expires",
                    window.label,
                    max(0.0, latest - window.opened),
                )
                window.at_longest = False
                self._set_limit(window, latest)
        await asyncio.shield(window.done)

    @callback
    def discard(self, event_id: str) -> None:
        """The outbox is done with the event: its clips are no longer wanted (a recording nobody needs stops)."""
        for window in self._windows.pop(event_id, ()):
            if window.closed is None:
                LOGGER.info("Event %s needs no %s any more; its recording stops", event_id, window.kind.value)
            window.wanted = False
            self._close(window)

    # Windows --------------------------------------------------------------------------------------------------

    def _new_window(self, event_id: str, source: str, camera: str, kind: MediaKind, now: float) -> _Window:
        if kind is MediaKind.SHORT_MP4:
            limit = now + self._settings.short_seconds + START_ALLOWANCE
        else:
            limit = now + self._settings.event_max_seconds
        done: asyncio.Future[None] = self._hass.loop.create_future()
        return _Window(event_id=event_id, source=source, camera=camera, kind=kind, opened=now, limit=limit, done=done)

    def _problem(self, camera: str) -> str | None:
        """Why clips of `camera` cannot be recorded at all, or None."""
        component = self._hass.data.get(DATA_COMPONENT)
        entity = component.get_entity(camera) if component is not None else None
        if entity is None:
            return f"{camera} is not a camera Home Assistant knows"
        if not entity.supported_features & CameraEntityFeature.STREAM:
            return f"{camera} cannot stream (it does not support CameraEntityFeature.STREAM), so it cannot record clips"
        if STREAM_DOMAIN not in self._hass.config.components:
            return "the stream integration is not loaded (add `stream:` or `default_config:` to configuration.yaml)"
        return None

    def _set_limit(self, window: _Window, limit: float) -> None:
        window.limit = limit
        if window.timer is not None:
            window.timer.cancel()
            window.timer = None
        if window.session is None:
            return  # queued: its timer starts with its session
        if limit <= self._hass.loop.time():
            self._close(window)
        else:
            window.timer = self._hass.loop.call_at(limit, self._limit_reached, window)

    def _limit_reached(self, window: _Window) -> None:
        window.timer = None
        if window.closed is None and window.kind is MediaKind.EVENT_MP4 and window.at_longest:
            LOGGER.info("The %s ends after %.0f s, its longest", window.label, window.limit - window.opened)
        self._close(window)

    def _close(self, window: _Window) -> None:
        if window.timer is not None:
            window.timer.cancel()
            window.timer = None
        if window.closed is None:
            window.closed = self._hass.loop.time()
        session = window.session
        if session is None:
            if window not in self._queued.get(window.camera, ()):
                _settle(window)  # queued windows are settled when the session they wait for ends
        elif all(other.closed is not None for other in session.windows):
            session.stop.set()

    def _alarm_ended(self, source: str) -> None:
        now = self._hass.loop.time()
        for window in [window for windows in self._windows.values() for window in windows]:
            if window.source != source or window.closed is not None:
                continue
            if window.kind is MediaKind.SHORT_MP4:
                LOGGER.info(
                    "The alarm of %s ended %.1f s after it started, before its short clip was done; the clip is "
                    "recorded to its full length",
                    window.camera,
                    now - window.opened,
                )
            else:
                window.at_longest = False
                self._set_limit(window, max(now, window.opened + EVENT_CLIP_MIN_SECONDS))

    # Sessions -------------------------------------------------------------------------------------------------

    def _start_session(self, camera: str, windows: list[_Window]) -> None:
        if any(window.kind is MediaKind.EVENT_MP4 for window in windows):
            duration = max(self._settings.event_max_seconds, self._settings.short_seconds)
        else:
            duration = self._settings.short_seconds
        now = self._hass.loop.time()
        name = f".recording_{next(self._numbers)}_{camera}.mp4"
        session = _Session(
            camera=camera, path=self._media.folder / name, duration=math.ceil(duration), end=now + duration
        )
        self._sessions[camera] = session
        self._join(session, windows)
        session.task = self._start_task(self._run(session), f"chekt clip recording of {camera}")

    def _join(self, session: _Session, windows: Iterable[_Window]) -> None:
        latest = session.end + START_ALLOWANCE
        for window in windows:
            window.session = session
            session.windows.append(window)
            if window.limit > latest:
                if session.windows[0] is not window and window.kind is MediaKind.EVENT_MP4:
                    LOGGER.info(
                        "%s was already recording a shorter clip; the %s ends with that recording",
                        session.camera,
                        window.label,
                    )
                    window.at_longest = False
                window.limit = latest
            self._set_limit(window, window.limit)

    async def _run(self, session: _Session) -> None:
        try:
            stream = await self._open_stream(session)
            if stream is not None and not session.stop.is_set():
                await self._record(session, stream)
            await self._deliver(session)
        finally:
            self._end_session(session)

    async def _open_stream(self, session: _Session) -> Stream | None:
        component = self._hass.data.get(DATA_COMPONENT)
        camera = component.get_entity(session.camera) if component is not None else None
        if camera is None:
            LOGGER.warning("No clip from %s: the camera is gone", session.camera)
            return None
        try:
            stream = await camera.async_create_stream()
        except (HomeAssistantError, TimeoutError) as err:
            LOGGER.warning("No clip from %s: its stream cannot be opened (%s)", session.camera, err or "timeout")
            return None
        if stream is None:
            LOGGER.warning("No clip from %s: the camera has no stream source now", session.camera)
        return stream

    async def _record(self, session: _Session, stream: Stream) -> None:
        session.stream = stream
        session.started = self._hass.loop.time()

        @callback
        def camera_changed(event: Event[EventStateChangedData]) -> None:
            if (state := event.data["new_state"]) is not None and state.state == STATE_UNAVAILABLE:
                session.failed = True

        unsubscribe = async_track_state_change_event(self._hass, session.camera, camera_changed)
        session.lookback = float(CLIP_LOOKBACK) if HLS_PROVIDER in stream.outputs() else 0.0
        recording = asyncio.create_task(
            stream.async_record(str(session.path), duration=session.duration, lookback=CLIP_LOOKBACK),
            name=f"chekt recording of {session.camera}",
        )
        stop = asyncio.create_task(session.stop.wait(), name=f"chekt end of recording of {session.camera}")
        first_video = asyncio.create_task(
            self._wait_for_first_video(session, stream, recording), name=f"chekt first video of {session.camera}"
        )
        try:
            await asyncio.wait((recording, stop), return_when=asyncio.FIRST_COMPLETED)
            if not recording.done():
                await self._stop_recorder(session)
            await recording
        except (HomeAssistantError, OSError) as err:
            LOGGER.warning("%s could not record clips: %s", session.camera, err)
        finally:
            unsubscribe()
            stop.cancel()
            first_video.cancel()
            if not recording.done():  # this task was cancelled: leave no recorder (nor stream worker) behind
                await self._stop_recorder(session)
                recording.cancel()

    async def _wait_for_first_video(self, session: _Session, stream: Stream, recording: asyncio.Task[None]) -> None:
        """Count the short clips' time from the first video the recording gets, as the stream integration does.

        Until then, a short clip's window ends START_ALLOWANCE after its length: a stream that gives no video by
        then is given up.
        """
        while not recording.done():
            if (output := _recorder_of(stream, session.path)) is not None and _has_video(output):
                now = self._hass.loop.time()
                parts = output.last_segment.parts if output.last_segment is not None else []
                session.first_video = now - sum(part.duration for part in parts)
                session.end = max(session.end, now + session.duration)
                for window in session.windows:
                    if window.kind is MediaKind.SHORT_MP4 and window.closed is None:
                        limit = max(window.limit, now + self._settings.short_seconds + START_ALLOWANCE)
                        self._set_limit(window, min(limit, window.deadline, session.end + START_ALLOWANCE))
                return
            await asyncio.sleep(FIRST_VIDEO_POLL)

    async def _stop_recorder(self, session: _Session) -> None:
        """End this session's recording early: remove its own recorder output from the camera's stream.

        That is what the stream integration does itself when a recording's time is up; the recording then writes
        what it has. Other outputs (someone watching) go on; with none left, the stream integration stops the
        stream worker. A recorder removed before any video reached it makes the stream integration log an error,
        so a recording stopped that early (its event was discarded at once) gives its stream a fair chance first:
        up to FIRST_VIDEO_WAIT from its start, unless the stream has already failed.
        """
        if (stream := session.stream) is None or (output := _recorder_of(stream, session.path)) is None:
            return
        started = session.started if session.started is not None else self._hass.loop.time()
        chance = started + FIRST_VIDEO_WAIT - self._hass.loop.time()
        if not _has_video(output) and not session.failed and chance > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(chance):
                    while not _has_video(output) and not session.failed:
                        await output.part_recv(timeout=FIRST_VIDEO_POLL)
            if (output := _recorder_of(stream, session.path)) is None:
                return
        await stream.remove_provider(output)

    async def _deliver(self, session: _Session) -> None:
        """Cut each wanted window's clip out of the recording and hand it to the outbox."""
        ended = self._hass.loop.time()
        for window in session.windows:
            if window.closed is None:
                window.closed = ended
        wanted = [window for window in session.windows if window.wanted]
        path = session.path
        try:
            if not wanted or session.started is None:
                return
            if not await self._hass.async_add_executor_job(path.is_file):
                why = "its stream failed" if session.failed else "no video came"
                LOGGER.warning(
                    "The recording of %s captured nothing (%s; the stream integration logs why); no %s",
                    session.camera,
                    why,
                    ", ".join(window.label for window in wanted),
                )
                return
            if (total := await self._hass.async_add_executor_job(_probe, path)) is None:
                return
            cuts = self._plan(session, session.started, wanted, ended, total)
            made = await self._hass.async_add_executor_job(_cut_all, path, self._media.folder, cuts)
            for window, seconds in zip(wanted, made, strict=True):
                await self._hand_over(session, window, seconds)
        finally:
            await self._hass.async_add_executor_job(_remove_recording, path)

    def _plan(
        self, session: _Session, started: float, windows: list[_Window], ended: float, total: float
    ) -> list[_Cut]:
        """Where each window lies in the recording.

        The recording starts with its look-back, then the first video the stream gave after `started` (seen at
        `first_video`; if it was not seen, the recording is taken to end at `ended`). Windows that were there when
        it started begin with it, look-back included; a short clip lasts its length from the first video.
        """
        # The moment (loop time) the recording's time 0 shows.
        origin = ended - total if session.first_video is None else session.first_video - session.lookback
        cuts: list[_Cut] = []
        for window in windows:
            closed = window.closed if window.closed is not None else ended
            initial = window.opened <= started
            start = 0.0 if initial else max(0.0, window.opened - origin)
            end: float | None
            if window.kind is MediaKind.SHORT_MP4:
                end = start + (session.lookback if initial else 0.0) + self._settings.short_seconds
            else:
                end = closed - origin
            if end >= total - 0.05:
                end = None
            cuts.append(_Cut(clip_name(window.event_id, window.kind), start, end))
        return cuts

    async def _hand_over(self, session: _Session, window: _Window, seconds: float | None) -> None:
        name = clip_name(window.event_id, window.kind)
        if seconds is None:
            return  # _cut_all logged why
        asked = self._asked(window)
        if asked - seconds > max(SHORTFALL_TOLERANCE, asked / 4):
            LOGGER.warning(
                "The %s has only %.1f s of the %.1f s asked: %s",
                window.label,
                seconds,
                asked,
                "the camera's stream failed during the recording (the stream integration logs why)"
                if session.failed
                else "the camera's stream gave no more video",
            )
        size = await self._hass.async_add_executor_job(_size, self._media.folder / name)
        if size > self._media.budget_bytes:
            LOGGER.warning(
                "The %s (%d bytes) is larger than the whole media budget (%d bytes); dropped",
                window.label,
                size,
                self._media.budget_bytes,
            )
            await self._hass.async_add_executor_job(_remove_recording, self._media.folder / name)
            return
        evicted = await self._media.async_adopt(window.event_id, name)
        LOGGER.debug("Recorded the %s: %.1f s, %d bytes", window.label, seconds, size)
        self._on_clip(window.event_id, window.kind, name, evicted)

    def _asked(self, window: _Window) -> float:
        if window.kind is MediaKind.SHORT_MP4:
            return self._settings.short_seconds
        closed = window.closed if window.closed is not None else window.limit
        return closed - window.opened

    def _end_session(self, session: _Session) -> None:
        for window in session.windows:
            if window.timer is not None:
                window.timer.cancel()
                window.timer = None
            _settle(window)
        if self._sessions.get(session.camera) is session:
            del self._sessions[session.camera]
        queued = self._queued.pop(session.camera, [])
        waiting = [window for window in queued if window.closed is None and not self._stopped]
        for window in queued:
            if window not in waiting:
                if window.wanted and not self._stopped:
                    LOGGER.info("The %s was not recorded: %s was busy until it ended", window.label, window.camera)
                _settle(window)
        if waiting:
            # They start now, as long as they would have been (their upload URLs permitting).
            now = self._hass.loop.time()
            for window in waiting:
                LOGGER.info("The %s starts %.1f s late: %s was busy", window.label, now - window.opened, window.camera)
                window.limit = min(window.limit + now - window.opened, window.deadline)
                window.opened = now
            self._start_session(session.camera, waiting)


def _recorder_of(stream: Stream, path: Path) -> StreamOutput | None:
    """The recorder output writing `path` on `stream`, while it records."""
    output = stream.outputs().get(RECORDER_PROVIDER)
    if output is None or getattr(output, "video_path", None) != str(path):
        return None
    return output


def _has_video(output: StreamOutput) -> bool:
    """Whether a recorder output has received video (a part of a segment) yet."""
    return (segment := output.last_segment) is not None and bool(segment.parts)


def _settle(window: _Window) -> None:
    if not window.done.done():
        window.done.set_result(None)


# Files (run in the executor) ----------------------------------------------------------------------------------


def video_seconds(path: Path) -> float:
    """How long the video of an MP4 lasts, from its packets' timestamps. Blocking."""
    import av  # noqa: PLC0415

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        first: int | None = None
        last: int | None = None
        for packet in container.demux(video):
            if packet.pts is None:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            last = max(last or packet.pts, packet.pts + (packet.duration or 0))
        if first is None or last is None or video.time_base is None:
            return 0.0
        return float((last - first) * video.time_base)


def _probe(path: Path) -> float | None:
    import av  # noqa: PLC0415

    try:
        return video_seconds(path)
    except (OSError, ValueError, IndexError, av.FFmpegError) as err:
        LOGGER.warning("The recording %s cannot be read: %s", path.name, err)
        return None


def _cut_all(recording: Path, folder: Path, cuts: list[_Cut]) -> list[float | None]:
    """Make each clip; the last one that takes the whole recording gets the file itself. Blocking."""
    import av  # noqa: PLC0415 -- PyAV comes with the stream integration, which cameras without streams do without

    whole = [index for index, cut in enumerate(cuts) if cut.start <= 0 and cut.end is None]
    moved = whole[-1] if whole else None
    made: dict[int, float | None] = {}
    # The recording itself goes last, once every other clip has been taken out of it.
    for index in [*(index for index in range(len(cuts)) if index != moved), *([] if moved is None else [moved])]:
        cut = cuts[index]
        target = folder / cut.name
        try:
            if index == moved:
                recording.replace(target)
                made[index] = video_seconds(target)
            elif index in whole:
                shutil.copyfile(recording, target)
                made[index] = video_seconds(target)
            else:
                made[index] = cut_clip(recording, target, cut.start, cut.end)
        except (OSError, ValueError, IndexError, av.FFmpegError) as err:
            LOGGER.warning("Could not make %s from the recording: %s", cut.name, err)
            target.unlink(missing_ok=True)
            made[index] = None
    return [made[index] for index in range(len(cuts))]


def cut_clip(source: Path, target: Path, start: float, end: float | None) -> float:
    """Copy seconds `start` to `end` (None: to the end) of an MP4 into `target`, without re-encoding. Blocking.

    The clip starts at the key frame at or before `start`, so that it plays from its first frame. Returns how long
    its video lasts.
    """
    origin, cut_at = _key_frame_before(source, start)
    stop_at = None if end is None else origin + Fraction(end).limit_denominator(1000)
    return _copy_packets(source, target, cut_at, stop_at)


def _key_frame_before(source: Path, start: float) -> tuple[Fraction, Fraction]:
    """When the video of `source` starts, and its last key frame at or before `start` seconds from there."""
    import av  # noqa: PLC0415

    with av.open(str(source)) as container:
        video = container.streams.video[0]
        time_base = video.time_base or DEFAULT_TIME_BASE
        origin: Fraction | None = None
        cut_at: Fraction | None = None
        for packet in container.demux(video):
            if packet.dts is None:
                continue
            moment = packet.dts * time_base
            if origin is None:
                origin = moment
            if moment - origin > start:
                break
            if packet.is_keyframe or cut_at is None:
                cut_at = moment
    if origin is None or cut_at is None:
        raise ValueError("the recording has no video")
    return origin, cut_at


def _copy_packets(source: Path, target: Path, cut_at: Fraction, stop_at: Fraction | None) -> float:
    """Copy the video (and audio) packets of `source` from `cut_at` until `stop_at` into `target`, from time 0."""
    import av  # noqa: PLC0415

    first: Fraction | None = None
    last = Fraction(0)
    with av.open(str(source)) as container, av.open(str(target), "w", format=CLIP_CONTAINER) as output:
        sources = [container.streams.video[0], *container.streams.audio[:1]]
        outputs = {stream.index: output.add_stream_from_template(stream) for stream in sources}
        for packet in container.demux(sources):
            if packet.dts is None or packet.pts is None or packet.stream.index not in outputs:
                continue
            time_base = packet.time_base or DEFAULT_TIME_BASE
            moment = packet.dts * time_base
            if moment < cut_at:
                continue
            is_video = packet.stream.type == "video"
            if stop_at is not None and moment >= stop_at:
                if is_video:
                    break
                continue
            shift = round(cut_at / time_base)
            packet.dts -= shift
            packet.pts -= shift
            if is_video:
                begin = packet.pts * time_base
                first = begin if first is None else min(first, begin)
                last = max(last, (packet.pts + (packet.duration or 0)) * time_base)
            packet.stream = outputs[packet.stream.index]
            output.mux(packet)
    return float(last - first) if first is not None else 0.0


def _size(path: Path) -> int:
    return path.stat().st_size


def _remove_recording(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)
