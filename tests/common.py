"""Building blocks of integration tests: real cameras that serve JPEGs, and config entries with subentries."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from homeassistant.components.camera import Camera
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry, setup_test_component_platform

from custom_components.chekt.const import (
    CONF_ALARM_ENTITY_IDS,
    CONF_CAMERA_ENTITY_ID,
    CONF_CAMERA_ID,
    CONF_CLIENT_ID,
    CONF_LOCATION_ID,
    CONF_PANEL_ENTITY_ID,
    CONF_RECORDER_ID,
    CONF_SIGNAL_MONITORING_CENTER,
    CONF_SNAPSHOT_COUNT,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    CONF_TROUBLE_ON_UNAVAILABLE,
    CONF_UPLOAD_EVENT_MP4,
    CONF_UPLOAD_SHORT_MP4,
    DOMAIN,
    SUBENTRY_ALARM_PANEL,
    SUBENTRY_CAMERA,
)


def make_jpeg(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real JPEG."""
    output = io.BytesIO()
    Image.new("RGB", size, color).save(output, format="JPEG")
    return output.getvalue()


class FakeCamera(Camera):
    """A camera that serves a JPEG (or fails on request) and counts how often it was asked."""

    _attr_has_entity_name = False

    def __init__(self, name: str, image: bytes | None = None) -> None:
        super().__init__()
        self._attr_name = name
        self._attr_unique_id = f"fake-{name}"
        self.image = image if image is not None else make_jpeg()
        self.content_type = "image/jpeg"
        self.failing = False
        self.requests = 0

    async def async_camera_image(self, width: int | None = None, height: int | None = None) -> bytes | None:
        self.requests += 1
        if self.failing:
            raise HomeAssistantError("the camera is not answering")
        return self.image


async def setup_cameras(hass: HomeAssistant, *cameras: FakeCamera) -> None:
    """Load the camera integration with `cameras` as entities (camera.<name>)."""
    setup_test_component_platform(hass, "camera", cameras)
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()


def camera_subentry(
    camera_entity_id: str = "camera.front",
    alarm_entity_ids: tuple[str, ...] = ("binary_sensor.front_motion",),
    **overrides: Any,
) -> ConfigSubentryData:
    """A camera subentry as the subentry flow stores it."""
    data: dict[str, Any] = {
        CONF_CAMERA_ENTITY_ID: camera_entity_id,
        CONF_LOCATION_ID: "LOC1",
        CONF_RECORDER_ID: "REC1",
        CONF_CAMERA_ID: f"CAM-{camera_entity_id.split('.')[1]}",
        CONF_ALARM_ENTITY_IDS: list(alarm_entity_ids),
        CONF_SIGNAL_MONITORING_CENTER: True,
        CONF_SNAPSHOT_COUNT: 1,
        CONF_UPLOAD_SHORT_MP4: False,
        CONF_UPLOAD_EVENT_MP4: False,
        CONF_TROUBLE_ON_UNAVAILABLE: True,
    }
    data.update(overrides)
    return ConfigSubentryData(
        data=data,
        subentry_type=SUBENTRY_CAMERA,
        title=f"{camera_entity_id} ({data[CONF_CAMERA_ID]})",
        unique_id=None,
    )


def panel_subentry(panel_entity_id: str = "alarm_control_panel.house", **overrides: Any) -> ConfigSubentryData:
    """An alarm panel subentry as the subentry flow stores it."""
    data: dict[str, Any] = {
        CONF_PANEL_ENTITY_ID: panel_entity_id,
        CONF_LOCATION_ID: "LOC1",
        CONF_CAMERA_ID: "CAM-PANEL",
        CONF_SIGNAL_MONITORING_CENTER: True,
    }
    data.update(overrides)
    return ConfigSubentryData(data=data, subentry_type=SUBENTRY_ALARM_PANEL, title=panel_entity_id, unique_id=None)


async def setup_entry(
    hass: HomeAssistant,
    entry_data: dict[str, Any],
    *subentries: ConfigSubentryData,
    snapshot_interval: float = 0.05,
    trouble_delay: int = 60,
) -> MockConfigEntry:
    """Add and load a CHeKT config entry with `subentries`."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"CHeKT ({entry_data[CONF_CLIENT_ID]})",
        unique_id=f"{entry_data[CONF_CLIENT_ID]}@{entry_data[CONF_TOKEN_URL]}",
        data=entry_data,
        options={CONF_SNAPSHOT_INTERVAL: snapshot_interval, CONF_TROUBLE_DELAY: trouble_delay},
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def entities_refreshed(hass: HomeAssistant) -> None:
    """Wait until the CHeKT entities show the outbox's state of now.

    The outbox tells its entities of a change a moment later (`outbox.STATE_REFRESH`, or up to
    `STATE_REFRESH_LATEST` while events are being sent), never inside the state change that raised an alarm; a
    test that reads them right after a change waits for that here.
    """
    await hass.async_block_till_done()
    outboxes = [entry.runtime_data.outbox for entry in hass.config_entries.async_loaded_entries(DOMAIN)]
    async with asyncio.timeout(10):
        while any(outbox.listeners_behind for outbox in outboxes):  # noqa: ASYNC110 -- a timer, not an event
            await asyncio.sleep(0.01)
    await hass.async_block_till_done()
