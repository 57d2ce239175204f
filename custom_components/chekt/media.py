"""Snapshots of an event, taken from the mapped camera at the moment of the event and then at an interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import io
from typing import Any

from homeassistant.components.camera import async_get_image
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import LOGGER

JPEG = "image/jpeg"
SNAPSHOT_TIMEOUT = 10

type TaskStarter = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class SnapshotSeries:
    """`count` JPEGs of one camera: the first at once, the next every `interval` seconds.

    Each snapshot is awaited on its own (`get(seq)`), so an upload starts the moment its image exists.
    A snapshot that fails resolves to None: the event and the other snapshots go on without it.
    """

    def __init__(
        self, hass: HomeAssistant, camera_entity_id: str, count: int, interval: float, start_task: TaskStarter
    ) -> None:
        """Start taking the snapshots now, in the background."""
        self._hass = hass
        self._camera_entity_id = camera_entity_id
        self._interval = interval
        loop = hass.loop
        self._images: list[asyncio.Future[bytes | None]] = [loop.create_future() for _ in range(count)]
        self._task = start_task(self._take_all(), f"chekt snapshots of {camera_entity_id}")

    @property
    def count(self) -> int:
        """How many snapshots the series takes."""
        return len(self._images)

    async def get(self, seq: int) -> bytes | None:
        """The JPEG of snapshot `seq`, once taken; None when it failed or does not exist."""
        if seq >= len(self._images):
            return None
        return await asyncio.shield(self._images[seq])

    def cancel(self) -> None:
        """Stop taking snapshots (unload)."""
        self._task.cancel()
        for image in self._images:
            if not image.done():
                image.set_result(None)

    async def _take_all(self) -> None:
        loop = self._hass.loop
        started = loop.time()
        for seq, image in enumerate(self._images):
            # Keep to the schedule from the first shot: a slow camera must not stretch the series.
            delay = started + seq * self._interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not image.done():
                image.set_result(await self._take_one(seq))

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
