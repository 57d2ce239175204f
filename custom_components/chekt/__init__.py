"""CHeKT for Home Assistant: alarms, arming changes and troubles, with snapshots, to the CHeKT cloud.

The path of an alarm: a state change of a mapped entity (forwarder.py) → the rules (rules.py) → the outbox
(outbox.py, with media.py taking the snapshots beside it) → the CHeKT client (api/) → the cloud.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.storage import STORAGE_DIR
from homeassistant.helpers.typing import ConfigType

from .api import ChektAuthError, ChektClient, ChektConfigError, ChektError
from .clips import ClipSettings
from .connection import async_create_client
from .const import (
    CONF_EVENT_CLIP_MAX,
    CONF_LATE_AFTER,
    CONF_SHORT_CLIP_LENGTH,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TROUBLE_DELAY,
    DEFAULT_EVENT_CLIP_MAX,
    DEFAULT_LATE_AFTER,
    DEFAULT_SHORT_CLIP_LENGTH,
    DEFAULT_SNAPSHOT_INTERVAL,
    DEFAULT_TROUBLE_DELAY,
    DOMAIN,
    LOGGER,
)
from .forwarder import Forwarder
from .mapping import Mappings
from .media import MediaStore
from .outbox import Outbox, OutboxLimits
from .repairs import DeliveryIssues
from .rules import RuleMemory
from .services import async_setup_services
from .store import OutboxStore

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
        (subentry_id, subentry.subentry_type, subentry.data) for subentry_id, subentry in entry.subentries.items()
    )

    def start_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return entry.async_create_background_task(hass, coro, name)

    limits = OutboxLimits(late_after=timedelta(seconds=entry.options.get(CONF_LATE_AFTER, DEFAULT_LATE_AFTER)))
    outbox = Outbox(
        hass,
        client,
        store=OutboxStore(hass, entry.entry_id),
        media=MediaStore(hass, media_folder(hass, entry.entry_id), limits.media_budget_bytes),
        issues=DeliveryIssues(hass, entry.entry_id, entry.title),
        start_task=start_task,
        snapshot_interval=entry.options.get(CONF_SNAPSHOT_INTERVAL, DEFAULT_SNAPSHOT_INTERVAL),
        limits=limits,
        on_auth_failed=lambda: entry.async_start_reauth(hass),
        clip_settings=ClipSettings(
            short_seconds=entry.options.get(CONF_SHORT_CLIP_LENGTH, DEFAULT_SHORT_CLIP_LENGTH),
            event_max_seconds=entry.options.get(CONF_EVENT_CLIP_MAX, DEFAULT_EVENT_CLIP_MAX),
        ),
    )
    # The backlog kept from before a restart goes out first, in order, before any new event of its source.
    await outbox.async_start()
    forwarder = Forwarder(
        hass,
        mappings,
        trouble_delay=entry.options.get(CONF_TROUBLE_DELAY, DEFAULT_TROUBLE_DELAY),
        submit=outbox.submit,
        memory=RuleMemory.from_reported(outbox.restored_reported),
    )
    outbox.reported = forwarder.rules.memory.reported
    entry.runtime_data = ChektRuntimeData(client=client, mappings=mappings, outbox=outbox, forwarder=forwarder)
    # Alarms must be forwarded even when the cloud is unreachable at start-up: they wait in the outbox. So the
    # connection is checked in the background, and wrong credentials only start re-authentication.
    entry.async_create_background_task(hass, _async_check_credentials(hass, entry, client), "chekt credentials")
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    forwarder.async_start()
    entry.async_on_unload(forwarder.async_stop)

    # Home Assistant stopping does not unload entries; the outbox's records are saved on the final write, and
    # the snapshots they refer to must be on disk by then.
    async def _async_keep_media(_event: Event) -> None:
        await outbox.async_keep_media_now()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_keep_media))
    # Subentries added, changed or removed, or options changed: reload, so the change takes effect at once.
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_update))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ChektConfigEntry) -> bool:
    """Stop forwarding and save the outbox; every task and listener of the entry ends with it."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    entry.runtime_data.forwarder.async_stop()
    await entry.runtime_data.outbox.async_stop()
    return True


async def async_remove_entry(hass: HomeAssistant, entry: ChektConfigEntry) -> None:
    """Delete the entry's outbox and its media: nothing of a removed account stays behind."""
    await OutboxStore(hass, entry.entry_id).async_remove()
    await MediaStore(hass, media_folder(hass, entry.entry_id), budget_bytes=0).async_remove_all()
    DeliveryIssues(hass, entry.entry_id, entry.title).clear_all()


def media_folder(hass: HomeAssistant, entry_id: str) -> Path:
    """Where an entry's pending snapshots and clips are kept: under Home Assistant's storage, never under www."""
    return Path(hass.config.path(STORAGE_DIR, f"{DOMAIN}_media", entry_id))


async def _async_reload_on_update(hass: HomeAssistant, entry: ChektConfigEntry) -> None:
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def _async_check_credentials(hass: HomeAssistant, entry: ChektConfigEntry, client: ChektClient) -> None:
    try:
        await client.authenticate()
        outbox = entry.runtime_data.outbox
        # The token endpoint is another host than the event API: it only fills in an unknown state, and never
        # overrules what deliveries have seen.
        if outbox.state.cloud_reachable is None:
            outbox.report_reachability(reachable=True)
    except ChektAuthError as err:
        LOGGER.error("CHeKT refused the credentials of %s: %s", entry.title, err)
        _start_reauth(hass, entry)
    except ChektError as err:
        LOGGER.warning("CHeKT is not reachable yet (%s); events will be queued and retried", err)


@callback
def _start_reauth(hass: HomeAssistant, entry: ChektConfigEntry) -> None:
    entry.async_start_reauth(hass)
