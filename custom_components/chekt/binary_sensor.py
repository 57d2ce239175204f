"""The connectivity of the CHeKT cloud, as seen by the last request."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import ChektConfigEntry
from .entity import ChektEntity, account_device

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: ChektConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the account's connectivity sensor."""
    outbox = entry.runtime_data.outbox
    async_add_entities([CloudConnectivity(outbox, account_device(entry), f"{entry.entry_id}_cloud")])


class CloudConnectivity(ChektEntity, BinarySensorEntity):
    """On while the CHeKT cloud answers; off while events wait for it."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "cloud"

    @property
    def is_on(self) -> bool | None:
        """None until the first request has told."""
        return self._outbox.state.cloud_reachable

    def _shown(self) -> object:
        return self._outbox.state.cloud_reachable
