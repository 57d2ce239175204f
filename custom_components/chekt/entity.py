"""The base of CHeKT entities: one device for the account, one per mapped camera or panel."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import callback
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
    """An entity pushed by the outbox: it updates whenever what it shows of the outbox's state changes.

    The outbox changes several times per event (queued, sent, each upload done); writing the state of every
    entity each time would cost more than the event itself. So each entity says what it shows (`_shown`) and
    writes its state only when that differs; one that shows a single source (`source`) hears only of that one.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, outbox: Outbox, device: DeviceInfo, unique_id: str, source: str | None = None) -> None:
        """Attach to `device` with a stable unique id; `source` when the entity shows one source only."""
        self._outbox = outbox
        self._listen_source = source
        self._attr_device_info = device
        self._attr_unique_id = unique_id
        self._last_shown: object = None

    async def async_added_to_hass(self) -> None:
        """Follow the outbox's state."""
        await super().async_added_to_hass()
        self._last_shown = self._shown()
        self.async_on_remove(self._outbox.async_add_listener(self._async_outbox_changed, source=self._listen_source))

    def _shown(self) -> object:
        """What the entity shows of the outbox's state (its state and attributes); by default always new."""
        return object()

    @callback
    def _async_outbox_changed(self) -> None:
        """Write the state when what the entity shows has changed."""
        shown = self._shown()
        if shown != self._last_shown:
            self._last_shown = shown
            self.async_write_ha_state()
