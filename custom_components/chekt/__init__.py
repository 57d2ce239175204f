"""CHeKT for Home Assistant: alarms, arming changes and troubles, with snapshots, to the CHeKT cloud.

The path of an alarm: a state change of a mapped entity (forwarder.py) → the rules (rules.py) → the outbox
(outbox.py, with media.py taking the snapshots beside it) → the CHeKT client (api/) → the cloud.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .api import ChektAuthError, ChektClient, ChektConfigError, ChektError
from .connection import async_create_client
from .const import (
    CONF_SNAPSHOT_INTERVAL,
    CONF_TROUBLE_DELAY,
    DEFAULT_SNAPSHOT_INTERVAL,
    DEFAULT_TROUBLE_DELAY,
    DOMAIN,
    LOGGER,
)
from .forwarder import Forwarder
from .mapping import Mappings
from .outbox import Outbox
from .services import async_setup_services

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


@dataclass(slots=True)
class ChektRuntimeData:
    """Everything a loaded entry runs."""

    client: ChektClient
    mappings: Mappings
    outbox: Outbox
    forwarder: Forwarder


type ChektConfigEntry = ConfigEntry[ChektRuntimeData]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the `chekt.send_event` action once, whatever entries exist."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ChektConfigEntry) -> bool:
    """Start forwarding the entry's mapped entities to CHeKT."""
    try:
        client = await async_create_client(hass, entry.data)
    except ChektConfigError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_configuration",
            translation_placeholders={"error": str(err)},
        ) from err
    mappings = Mappings.from_subentries(
        (subentry_id, subentry.subentry_type, subentry.data)
        for subentry_id, subentry in entry.subentries.items()
    )

    def start_task(coro: Coroutine[Any, Any, None], name: str) -> Any:
        return entry.async_create_background_task(hass, coro, name)

    outbox = Outbox(
        hass,
        client,
        start_task=start_task,
        snapshot_interval=entry.options.get(CONF_SNAPSHOT_INTERVAL, DEFAULT_SNAPSHOT_INTERVAL),
        on_auth_failed=lambda: entry.async_start_reauth(hass),
    )
    forwarder = Forwarder(
        hass,
        mappings,
        trouble_delay=entry.options.get(CONF_TROUBLE_DELAY, DEFAULT_TROUBLE_DELAY),
        submit=outbox.submit,
    )
    entry.runtime_data = ChektRuntimeData(
        client=client, mappings=mappings, outbox=outbox, forwarder=forwarder
    )
    # Alarms must be forwarded even when the cloud is unreachable at start-up: they wait in the outbox. So the
    # connection is checked in the background, and wrong credentials only start re-authentication.
    entry.async_create_background_task(
        hass, _async_check_credentials(hass, entry, client), "chekt credentials"
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    forwarder.async_start()
    entry.async_on_unload(forwarder.async_stop)
    entry.async_on_unload(outbox.async_stop)
    # Subentries added, changed or removed, or options changed: reload, so the change takes effect at once.
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_update))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ChektConfigEntry) -> bool:
    """Stop forwarding; every task and listener of the entry ends with it."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_reload_on_update(hass: HomeAssistant, entry: ChektConfigEntry) -> None:
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def _async_check_credentials(hass: HomeAssistant, entry: ChektConfigEntry, client: ChektClient) -> None:
    try:
        await client.authenticate()
    except ChektAuthError as err:
        LOGGER.error("CHeKT refused the credentials of %s: %s", entry.title, err)
        _start_reauth(hass, entry)
    except ChektError as err:
        LOGGER.warning("CHeKT is not reachable yet (%s); events will be queued and retried", err)


@callback
def _start_reauth(hass: HomeAssistant, entry: ChektConfigEntry) -> None:
    entry.async_start_reauth(hass)
