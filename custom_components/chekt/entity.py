"""The base of CHeKT entities: one device for the account, one per mapped camera or panel."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN
from .outbox import Outbox

MANUFACTURER = "CHeKT"


def account_device(entry: ConfigEntry) -> DeviceInfo:
    """The device that stands for the CHeKT application of `entry`."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer=MANUFACTURER,
        model="Partner Event API",
        entry_type=DeviceEntryType.SERVICE,
    )


def mapping_device(entry: ConfigEntry, subentry: ConfigSubentry) -> DeviceInfo:
    """The device that stands for one mapped camera or panel."""
    return DeviceInfo(
        identifiers={(DOMAIN, subentry.subentry_id)},
        name=subentry.title,
        manufacturer=MANUFACTURER,
        model=subentry.subentry_type.replace("_", " ").capitalize(),
        entry_type=DeviceEntryType.SERVICE,
    )


class ChektEntity(Entity):
    """An entity pushed by the outbox: it updates whenever the outbox's state changes."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, outbox: Outbox, device: DeviceInfo, unique_id: str) -> None:
        """Attach to `device` with a stable unique id."""
        self._outbox = outbox
        self._attr_device_info = device
        self._attr_unique_id = unique_id

    async def async_added_to_hass(self) -> None:
        """Follow the outbox's state."""
        await super().async_added_to_hass()
        self.async_on_remove(self._outbox.async_add_listener(self.async_write_ha_state))
