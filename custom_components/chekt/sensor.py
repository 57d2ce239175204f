"""Sensors of the CHeKT account (last event, events sent, backlog) and of each mapped camera or panel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import ChektConfigEntry
from .entity import ChektEntity, account_device, mapping_device
from .outbox import Outbox

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: ChektConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the account's sensors, then one last-event sensor per mapped camera or panel, in its subentry."""
    outbox = entry.runtime_data.outbox
    account = account_device(entry)
    async_add_entities(
        [
            LastEventSensor(outbox, account, f"{entry.entry_id}_last_event"),
            EventsSentSensor(outbox, account, f"{entry.entry_id}_events_sent"),
            BacklogSensor(outbox, account, f"{entry.entry_id}_backlog"),
        ]
    )
    for subentry_id, subentry in entry.subentries.items():
        async_add_entities(
            [MappedLastEventSensor(outbox, mapping_device(entry, subentry), f"{subentry_id}_last_event", subentry_id)],
            config_subentry_id=subentry_id,
        )


class LastEventSensor(ChektEntity, SensorEntity):
    """When the last event was settled by the cloud, with its type, status and reason as attributes."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_translation_key = "last_event"

    @property
    def native_value(self) -> datetime | None:
        """When the cloud last settled an event."""
        return self._outbox.state.last_event_time

    def _shown(self) -> object:
        state = self._outbox.state
        return (state.last_event_time, state.last_event_type, state.last_status, state.last_reason)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """The last event's type, status (accepted, discarded, rejected) and reason."""
        state = self._outbox.state
        return {"event_type": state.last_event_type, "status": state.last_status, "reason": state.last_reason}


class EventsSentSensor(ChektEntity, SensorEntity):
    """How many events the cloud accepted or discarded; the count is kept across restarts with the outbox."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    _attr_translation_key = "events_sent"

    @property
    def native_value(self) -> int:
        """The count."""
        return self._outbox.state.events_sent

    def _shown(self) -> object:
        return self._outbox.state.events_sent


class BacklogSensor(ChektEntity, SensorEntity):
    """Events waiting to be delivered."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_translation_key = "backlog"

    @property
    def native_value(self) -> int:
        """The number of events not yet settled by the cloud."""
        return self._outbox.state.backlog

    def _shown(self) -> object:
        return self._outbox.state.backlog


class MappedLastEventSensor(ChektEntity, SensorEntity):
    """The last event of one mapped camera or panel."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_translation_key = "last_event"

    def __init__(self, outbox: Outbox, device: Any, unique_id: str, source: str) -> None:
        """Follow the events whose source is this subentry."""
        super().__init__(outbox, device, unique_id, source)
        self._source = source

    @property
    def native_value(self) -> datetime | None:
        """When the cloud last settled an event of this camera or panel."""
        last = self._outbox.state.last_by_source.get(self._source)
        return last[0] if last else None

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """The status and reason of that event."""
        last = self._outbox.state.last_by_source.get(self._source)
        return {"status": last[1] if last else None, "reason": last[2] if last else None}

    def _shown(self) -> object:
        return self._outbox.state.last_by_source.get(self._source)
