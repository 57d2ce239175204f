"""The `chekt.send_event` action: automations send an event for a mapped camera, with its snapshots."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio as vol

from .api import EventStatus, EventType
from .const import (
    ATTR_EVENT_STATUS,
    ATTR_EVENT_TYPE,
    ATTR_PAYLOAD,
    CONF_CAMERA_ENTITY_ID,
    CONF_SIGNAL_MONITORING_CENTER,
    CONF_SNAPSHOT_COUNT,
    CONF_UPLOAD_EVENT_MP4,
    CONF_UPLOAD_SHORT_MP4,
    DOMAIN,
    MAX_SNAPSHOT_COUNT,
    SERVICE_SEND_EVENT,
)
from .outbox import Outcome
from .outgoing import OutgoingEvent

if TYPE_CHECKING:
    from . import ChektConfigEntry
    from .mapping import CameraMapping

# How long the action waits for the cloud's answer before it reports the event as queued.
RESPONSE_WAIT = 10.0

SEND_EVENT_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_CAMERA_ENTITY_ID): cv.entity_domain("camera"),
        vol.Optional(ATTR_EVENT_TYPE, default=EventType.ALARM.value): vol.In([t.value for t in EventType]),
        vol.Optional(ATTR_EVENT_STATUS, default=EventStatus.ACTIVE.value): vol.In([s.value for s in EventStatus]),
        vol.Optional(CONF_SIGNAL_MONITORING_CENTER): cv.boolean,
        vol.Optional(CONF_SNAPSHOT_COUNT): vol.All(vol.Coerce(int), vol.Range(min=0, max=MAX_SNAPSHOT_COUNT)),
        vol.Optional(CONF_UPLOAD_SHORT_MP4): cv.boolean,
        vol.Optional(CONF_UPLOAD_EVENT_MP4): cv.boolean,
        vol.Optional(ATTR_PAYLOAD, default=dict): dict,
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_EVENT,
        _async_send_event,
        schema=SEND_EVENT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_send_event(call: ServiceCall) -> ServiceResponse:
    entry, camera = _find_mapped_camera(call.hass, call.data[CONF_CAMERA_ENTITY_ID])
    data = call.data
    event = OutgoingEvent(
        source=camera.subentry_id,
        event_type=EventType(data[ATTR_EVENT_TYPE]),
        event_status=EventStatus(data[ATTR_EVENT_STATUS]),
        event_time=dt_util.utcnow(),
        location_id=camera.location_id,
        camera_id=camera.camera_id,
        recorder_id=camera.recorder_id,
        signal_monitoring_center=data.get(CONF_SIGNAL_MONITORING_CENTER, camera.signal_monitoring_center),
        snapshot_count=data.get(CONF_SNAPSHOT_COUNT, camera.snapshot_count),
        upload_short_mp4=data.get(CONF_UPLOAD_SHORT_MP4, camera.upload_short_mp4),
        upload_event_mp4=data.get(CONF_UPLOAD_EVENT_MP4, camera.upload_event_mp4),
        camera_entity_id=camera.camera_entity_id,
        payload={"source": "action", **data[ATTR_PAYLOAD]},
    )
    delivery = entry.runtime_data.outbox.submit(event, with_outcome=call.return_response)
    if delivery.outcome is None:
        # Nobody waits for the answer: do not hold up the automation; the outbox delivers the event regardless.
        return None
    try:
        async with asyncio.timeout(RESPONSE_WAIT):
            status, reason = await asyncio.shield(delivery.outcome)
    except TimeoutError:
        status, reason = Outcome.QUEUED, None
    return {"event_id": delivery.event_id, "status": status, "reason": reason}


def _find_mapped_camera(hass: HomeAssistant, camera_entity_id: str) -> tuple[ChektConfigEntry, CameraMapping]:
    entries: list[ChektConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    for entry in entries:
        if entry.state is not ConfigEntryState.LOADED:
            continue
        camera = entry.runtime_data.mappings.camera_by_entity(camera_entity_id)
        if camera is not None:
            return entry, camera
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="camera_not_mapped",
        translation_placeholders={"entity_id": camera_entity_id},
    )
