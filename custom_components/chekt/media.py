"""Media beside the outbox: snapshots taken at the moment of an event, and the folder that keeps them (and clips).

Snapshots that are still waiting for their upload a moment after they were taken (when the event's record is
saved) are written to disk under Home Assistant's storage, so a backlog delivered after an outage still carries
the pictures of the moment, and a restart does not lose them. The folder has a
size budget; when it is exceeded the oldest files go first (events themselves are kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
import io
from pathlib import Path
from typing import Any
import uuid

from homeassistant.components.camera import async_get_image
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import LOGGER

JPEG = "image/jpeg"
SNAPSHOT_TIMEOUT = 10
# Snapshot files written, read or deleted at once. A burst of alarms takes hundreds of snapshots in a moment;
# one executor thread each would fight the event loop for the GIL and stall it for tens of milliseconds.
FILE_JOBS = 1

type TaskStarter = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
type ImageCallback = Callable[[int, bytes | None], None]


class SnapshotSeries:
    """`count` JPEGs of one camera: the first at once, the next every `interval` seconds.

    Each image is handed to `on_image(seq, jpeg_or_none)` the moment it exists; `settled(seq)` waits for that,
    so an upload can start as soon as its own image is there. A failed snapshot is None: the event and the other
    snapshots go on without it.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        camera_entity_id: str,
        count: int,
        interval: float,
        *,
        start_task: TaskStarter,
        on_image: ImageCallback,
    ) -> None:
        """Start taking the snapshots now, in the background."""
        self._hass = hass
        self._camera_entity_id = camera_entity_id
        self._interval = interval
        self._on_image = on_image
        self._settled = [asyncio.Event() for _ in range(count)]
        self._task = start_task(self._take_all(), f"chekt snapshots of {camera_entity_id}")

    async def settled(self, seq: int) -> None:
        """Wait until snapshot `seq` was taken or has failed (at once for a seq the series does not have)."""
        if seq < len(self._settled):
            await self._settled[seq].wait()

    def cancel(self) -> None:
        """Stop taking snapshots; whoever waits is released."""
        self._task.cancel()
        for settled in self._settled:
            settled.set()

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every snapshot has settled (or the series was cancelled)."""
        self._task.add_done_callback(lambda _task: callback())

    async def _take_all(self) -> None:
        # The first picture is asked for on the next turn of the loop, not inside the state change that raised
        # the alarm (whose request has left by then): a burst of 200 alarms does not ask 200 cameras in one turn.
        try:
            await asyncio.sleep(0)
            loop = self._hass.loop
            started = loop.time()
            for seq, settled in enumerate(self._settled):
                # Keep to the schedule from the first shot: a slow camera must not stretch the series.
                delay = started + seq * self._interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._on_image(seq, await self._take_one(seq))
                settled.set()
        finally:
            # Cancelled from outside too (Home Assistant cancels background tasks as it stops): nobody waits forever.
            for settled in self._settled:
                settled.set()

    async def _take_one(self, seq: int) -> bytes | None:
        try:
            image = await async_get_image(self._hass, self._camera_entity_id, timeout=SNAPSHOT_TIMEOUT)
        except HomeAssistantError as err:
            LOGGER.warning("Snapshot %d of %s failed: %s", seq, self._camera_entity_id, err)
            return None
        if image.content_type == JPEG:
            return image.content
        try:
            return await self._hass.async_add_executor_job(to_jpeg, image.content)
        except (OSError, ValueError) as err:
            LOGGER.warning(
                "Snapshot %d of %s is %s and could not be converted to JPEG: %s",
                seq,
                self._camera_entity_id,
                image.content_type,
                err,
            )
            return None


def to_jpeg(content: bytes) -> bytes:
    """Re-encode an image (PNG, WebP ...) as JPEG, which is what CHeKT's snapshot URLs take. Blocking."""
    from PIL import Image  # noqa: PLC0415 -- Pillow is only needed for the rare non-JPEG camera

    with Image.open(io.BytesIO(content)) as picture:
        output = io.BytesIO()
        picture.convert("RGB").save(output, format="JPEG", quality=90)
        return output.getvalue()


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to write: whose it is, its name and its content."""

    event_id: str
    name: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did besides writing: the files it could not write (and why), and those it evicted."""

    failed: dict[str, OSError] = field(default_factory=dict)
    evicted: list[MediaFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One stored media file: whose it is and how big."""

    event_id: str
    name: str
    size: int


class MediaStore:
    """The folder of one config entry's pending media, with a size budget. All file work runs in the executor."""

    def __init__(self, hass: HomeAssistant, folder: Path, budget_bytes: int) -> None:
        """Nothing touches the disk until `async_load`."""
        self._hass = hass
        self._folder = folder
        self.budget_bytes = budget_bytes
        # Oldest first: dicts keep insertion order, and files are added in the order they were taken.
        self._files: dict[str, MediaFile] = {}
        self._total = 0  # what `_files` weighs, kept up to date: the budget is checked on every write
        self._file_jobs = asyncio.Semaphore(FILE_JOBS)

    @property
    def folder(self) -> Path:
        """Where the files are kept (clips are recorded straight into it)."""
        return self._folder

    @property
    def total_bytes(self) -> int:
        """What the stored media weighs now."""
        return self._total

    @property
    def count(self) -> int:
        """How many files are stored."""
        return len(self._files)

    def has(self, name: str) -> bool:
        """Whether `name` is stored."""
        return name in self._files

    async def async_load(self, keep: set[str]) -> None:
        """Index the folder, deleting files that no pending event refers to (left by a crash)."""
        self._files = await self._hass.async_add_executor_job(self._scan, keep)
        self._total = sum(file.size for file in self._files.values())

    async def async_write(self, files: list[NewFile]) -> WriteResult:
        """Store `files`, all in one executor job; returns which could not be written and what was evicted.

        A batch, because snapshots come in bursts: one thread hop for a moment's pictures instead of one each.
        """
        if not files:
            return WriteResult()
        async with self._file_jobs:
            failed = await self._hass.async_add_executor_job(self._write_files, files)
        written = [file for file in files if file.name not in failed]
        for file in written:
            self._keep(MediaFile(file.event_id, file.name, len(file.data)))
        evicted = await self._async_enforce_budget(keep={file.name for file in written}) if written else []
        return WriteResult(failed=failed, evicted=evicted)

    async def async_adopt(self, event_id: str, name: str) -> list[MediaFile]:
        """Take in `name`, already written into the folder (a clip); returns the older files evicted for it."""
        size = await self._hass.async_add_executor_job(self._size, name)
        self._keep(MediaFile(event_id, name, size))
        return await self._async_enforce_budget(keep={name})

    async def async_read(self, name: str) -> bytes | None:
        """The content of `name`, or None when it is gone."""
        if name not in self._files:
            return None
        async with self._file_jobs:
            return await self._hass.async_add_executor_job(self._read_file, name)

    async def async_delete(self, names: list[str]) -> None:
        """Forget and delete files (uploaded, or no longer wanted)."""
        names = [name for name in names if self._forget(name)]
        if names:
            async with self._file_jobs:
                await self._hass.async_add_executor_job(self._delete_files, names)

    async def async_remove_all(self) -> None:
        """Delete the folder and everything in it (the config entry is being removed)."""
        self._files.clear()
        self._total = 0
        await self._hass.async_add_executor_job(self._remove_folder)

    def _keep(self, file: MediaFile) -> None:
        if (replaced := self._files.get(file.name)) is not None:
            self._total -= replaced.size
        self._files[file.name] = file
        self._total += file.size

    def _forget(self, name: str) -> bool:
        if (file := self._files.pop(name, None)) is None:
            return False
        self._total -= file.size
        return True

    async def _async_enforce_budget(self, keep: set[str]) -> list[MediaFile]:
        if self._total <= self.budget_bytes:
            return []
        evicted: list[MediaFile] = []
        total = self.total_bytes
        for file in self._files.values():  # oldest first; nothing changes `_files` before the loop ends
            if total <= self.budget_bytes:
                break
            if file.name in keep:
                continue
            evicted.append(file)
            total -= file.size
        await self.async_delete([file.name for file in evicted])
        return evicted

    def _scan(self, keep: set[str]) -> dict[str, MediaFile]:
        if not self._folder.is_dir():
            return {}
        files: dict[str, MediaFile] = {}
        for path in sorted(self._folder.iterdir(), key=lambda p: p.name):
            if path.name in keep:
                files[path.name] = MediaFile(path.name.split("_", 1)[0], path.name, path.stat().st_size)
            else:
                path.unlink(missing_ok=True)
        return files

    def _write_files(self, files: list[NewFile]) -> dict[str, OSError]:
        failed: dict[str, OSError] = {}
        for file in files:
            try:
                self._write_file(file.name, file.data)
            except OSError as err:
                failed[file.name] = err
        return failed

    def _write_file(self, name: str, data: bytes) -> None:
        # A name of its own for each write: a write that outlived its task (Home Assistant cancels background
        # tasks as it stops) may still run while the same file is written again.
        partial = self._folder / f".{name}.{uuid.uuid4().hex}.partial"
        try:
            partial.write_bytes(data)
        except FileNotFoundError:  # the first file (or the folder was removed): not checked on every write
            self._folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
        partial.replace(self._folder / name)

    def _size(self, name: str) -> int:
        return (self._folder / name).stat().st_size

    def _read_file(self, name: str) -> bytes | None:
        try:
            return (self._folder / name).read_bytes()
        except FileNotFoundError:
            return None

    def _delete_files(self, names: list[str]) -> None:
        for name in names:
            (self._folder / name).unlink(missing_ok=True)

    def _remove_folder(self) -> None:
        if not self._folder.is_dir():
            return
        for path in self._folder.iterdir():
            path.unlink(missing_ok=True)
        self._folder.rmdir()
