"""Setting up, reloading and unloading an entry; subentry changes without a restart; reauth at run time."""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.chekt import media_folder
from custom_components.chekt.const import (
    CONF_API_URL,
    CONF_CAMERA_ID,
    CONF_CLIENT_ID,
    CONF_SIGNING_KEY,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    DOMAIN,
    SUBENTRY_CAMERA,
)
from custom_components.chekt.store import storage_key
from tests.api.keys import ec_key, public_pem
from tests.common import FakeCamera, camera_subentry, entities_refreshed, setup_cameras, setup_entry
from tests.conftest import AUDIENCE, SECRET
from tests.simulator import ChektSimulator, Endpoint, Fault, FaultKind

MOTION = "binary_sensor.front_motion"
YARD_MOTION = "binary_sensor.yard_motion"


@pytest.fixture
async def cameras(hass: HomeAssistant) -> tuple[FakeCamera, FakeCamera]:
    front, yard = FakeCamera("front"), FakeCamera("yard")
    await setup_cameras(hass, front, yard)
    return front, yard


def bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    return [record.body for record in sim.events if record.status == 201]


def chekt_tasks() -> list[asyncio.Task[Any]]:
    """The tasks of the integration still running (their names all say chekt)."""
    return [task for task in asyncio.all_tasks() if "chekt" in task.get_name().lower() and not task.done()]


def backlog(hass: HomeAssistant, entry: MockConfigEntry) -> str | None:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_backlog")
    state = hass.states.get(entity_id) if entity_id else None
    return state.state if state else None


def reauth_flows(hass: HomeAssistant, entry: MockConfigEntry) -> list[dict[str, Any]]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH and flow["context"].get("entry_id") == entry.entry_id
    ]


def add_entry(hass: HomeAssistant, data: dict[str, Any]) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"CHeKT ({data[CONF_CLIENT_ID]})",
        unique_id=f"{data[CONF_CLIENT_ID]}@{data[CONF_TOKEN_URL]}",
        data=data,
        options={CONF_SNAPSHOT_INTERVAL: 0.05, CONF_TROUBLE_DELAY: 60},
    )
    entry.add_to_hass(hass)
    return entry


# --- setup ---


@pytest.mark.parametrize(
    ("override", "leaked"),
    [
        ({CONF_SIGNING_KEY: public_pem(ec_key())}, public_pem(ec_key()).splitlines()[1]),
        ({CONF_SIGNING_KEY: "   "}, None),
        (
            {CONF_SIGNING_KEY: "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----"},
            "bm90IGEga2V5",
        ),
        ({CONF_API_URL: "http://chekt.example.com"}, None),
    ],
    ids=["public-key", "empty-key", "garbage-pem", "insecure-url"],
)
async def test_bad_stored_configuration_is_a_setup_error(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    override: dict[str, Any],
    leaked: str | None,
) -> None:
    entry = add_entry(hass, entry_data | override)

    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == "invalid_configuration"
    assert entry.error_reason_translation_placeholders is not None
    error = entry.error_reason_translation_placeholders["error"]
    assert error
    assert entry.reason is not None
    assert error in entry.reason
    if leaked is not None:
        assert leaked not in entry.reason
    # Not retried, and nothing was sent.
    assert simulator.token_requests == []
    assert chekt_tasks() == []


async def test_setup_fetches_a_token_in_the_background(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    entry = await setup_entry(hass, entry_data)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert [record.status for record in simulator.token_requests] == [200]
    assert reauth_flows(hass, entry) == []


async def complete_reauth(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Answer the entry's reauth flow with the (now registered) secret; the entry reloads."""
    (flow,) = reauth_flows(hass, entry)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_SIGNING_KEY: SECRET})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_unknown_client_loads_queues_and_asks_for_reauth(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    data = entry_data | {CONF_CLIENT_ID: "not-registered"}
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, data, camera_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert simulator.token_requests[0].status == 401
    flows = reauth_flows(hass, entry)
    assert len(flows) == 1
    assert flows[0]["step_id"] == "reauth_confirm"

    # The alarm is kept while the credentials are refused ...
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.token_requests) >= 2)
    await hass.async_block_till_done()
    assert bodies(simulator) == []
    await entities_refreshed(hass)
    assert backlog(hass, entry) == "1"
    assert len(reauth_flows(hass, entry)) == 1  # one flow, however many attempts failed

    # ... and delivered as soon as the credentials are fixed.
    simulator.add_client("not-registered", secret=SECRET, audience=AUDIENCE)
    await complete_reauth(hass, entry)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["event_status"] == "active"
    assert reauth_flows(hass, entry) == []


async def test_api_refusing_fresh_tokens_asks_for_reauth(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert reauth_flows(hass, entry) == []
    # The token endpoint still issues tokens, but the API refuses them, even a fresh one.
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.UNAUTHORIZED, count=2))

    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(reauth_flows(hass, entry)) == 1)

    assert [record.status for record in simulator.events] == [401, 401]
    assert entry.state is ConfigEntryState.LOADED
    await entities_refreshed(hass)
    assert backlog(hass, entry) == "1"
    await complete_reauth(hass, entry)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert [record.status for record in simulator.events] == [401, 401, 201]
    assert simulator.events[0].body["event_id"] == simulator.events[2].body["event_id"]


async def test_cloud_unreachable_at_setup_still_loads(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    await simulator.stop()
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert reauth_flows(hass, entry) == []

    hass.states.async_set(MOTION, "on")
    await simulator.start()
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)


async def test_token_endpoint_failing_at_setup_still_loads(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    simulator.inject(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=503))
    entry = await setup_entry(hass, entry_data)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert [record.status for record in simulator.token_requests] == [503]
    assert reauth_flows(hass, entry) == []


# --- unload ---


async def test_unload_stops_forwarding_and_every_task(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=3))
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.callbacks) == 3)
    await hass.async_block_till_done(wait_background_tasks=True)
    # An event still being retried when the entry unloads.
    await simulator.stop()
    hass.states.async_set(MOTION, "off")
    await simulator.wait_for(lambda: backlog(hass, entry) == "1")
    assert chekt_tasks() != []

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.NOT_LOADED
    assert chekt_tasks() == []
    await simulator.start()
    hass.states.async_set(MOTION, "on")  # not forwarded: the entry is not loaded
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(bodies(simulator)) == 1
    assert chekt_tasks() == []
    # The entities stay registered, unavailable, until the entry is loaded again.
    assert backlog(hass, entry) == "unavailable"

    # Loaded again, the entry delivers the event it kept, and only that one.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [body["event_status"] for body in bodies(simulator)] == ["active", "inactive"]
    await entities_refreshed(hass)
    assert backlog(hass, entry) == "0"


async def test_pending_uploads_resume_after_a_reload(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    """An accepted event whose snapshot could not be uploaded yet keeps it on disk, and uploads it when loaded."""
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=1))
    folder = media_folder(hass, entry.entry_id)
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503))

    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.faults) == 1)
    await simulator.stop()  # no retry of the upload can succeed now
    await simulator.wait_for(lambda: folder.is_dir() and any(folder.iterdir()))
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert simulator.uploads == []

    await simulator.start()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)

    assert len(bodies(simulator)) == 1  # the event itself is not sent again
    assert simulator.uploads[0].data == cameras[0].image
    assert simulator.callbacks[0].upload_preceded
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not any(folder.iterdir())  # uploaded, so no longer kept


async def test_removing_the_entry_deletes_its_backlog(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    cameras: Any,
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=1))
    folder = media_folder(hass, entry.entry_id)
    await simulator.stop()
    hass.states.async_set(MOTION, "on")
    # The snapshot of the waiting event is kept on disk, the event in the entry's store.
    await simulator.wait_for(lambda: folder.is_dir() and any(folder.iterdir()))
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass_storage[storage_key(entry.entry_id)]["data"]["records"] != []

    assert await hass.config_entries.async_remove(entry.entry_id) == {"require_restart": False}
    await hass.async_block_till_done()

    assert storage_key(entry.entry_id) not in hass_storage
    assert not folder.exists()
    assert hass.config_entries.async_get_entry(entry.entry_id) is None
    assert chekt_tasks() == []


async def test_reload_keeps_forwarding(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert entry.state is ConfigEntryState.LOADED


async def test_options_change_reloads(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    old_runtime = entry.runtime_data

    hass.config_entries.async_update_entry(entry, options={CONF_SNAPSHOT_INTERVAL: 0.05, CONF_TROUBLE_DELAY: 5})
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not old_runtime
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)


# --- subentries take effect without a restart ---


def subentry(**overrides: Any) -> ConfigSubentry:
    data = camera_subentry(camera_entity_id="camera.yard", alarm_entity_ids=(YARD_MOTION,), **overrides)
    return ConfigSubentry(
        data=MappingProxyType(data["data"]),
        subentry_type=data["subentry_type"],
        title=data["title"],
        unique_id=data["unique_id"],
    )


async def test_added_subentry_forwards_at_once(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(YARD_MOTION, "off")
    entry = await setup_entry(hass, entry_data)
    hass.states.async_set(YARD_MOTION, "on")
    hass.states.async_set(YARD_MOTION, "off")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert simulator.events == []

    yard = subentry(snapshot_count=1)
    assert hass.config_entries.async_add_subentry(entry, yard)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    hass.states.async_set(YARD_MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    body = bodies(simulator)[0]
    assert (body["camera_id"], body["event_status"], body["upload_snapshot_count"]) == (
        "CAM-yard",
        "active",
        1,
    )
    assert simulator.uploads[0].data == cameras[1].image

    # Its device and last-event sensor arrived with it.
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{yard.subentry_id}_last_event")
    assert entity_id is not None
    assert er.async_get(hass).async_get(entity_id).config_subentry_id == yard.subentry_id
    assert dr.async_get(hass).async_get_device_by_identifier((DOMAIN, yard.subentry_id), entry.entry_id)


async def test_changed_subentry_takes_effect_at_once(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(YARD_MOTION, "off")
    yard = camera_subentry(camera_entity_id="camera.yard", alarm_entity_ids=(YARD_MOTION,), snapshot_count=0)
    entry = await setup_entry(hass, entry_data, yard)
    subentry_id = next(iter(entry.subentries))

    assert hass.config_entries.async_update_subentry(
        entry,
        entry.subentries[subentry_id],
        data={**entry.subentries[subentry_id].data, CONF_CAMERA_ID: "CAM-NEW"},
        title="Yard (CAM-NEW)",
    )
    await hass.async_block_till_done()

    hass.states.async_set(YARD_MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["camera_id"] == "CAM-NEW"
    device = dr.async_get(hass).async_get_device_by_identifier((DOMAIN, subentry_id), entry.entry_id)
    assert device is not None
    assert device.name == "Yard (CAM-NEW)"


async def test_removed_subentry_stops_at_once(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], cameras: Any
) -> None:
    hass.states.async_set(MOTION, "off")
    hass.states.async_set(YARD_MOTION, "off")
    yard = camera_subentry(camera_entity_id="camera.yard", alarm_entity_ids=(YARD_MOTION,), snapshot_count=0)
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0), yard)
    yard_id = next(sid for sid, sub in entry.subentries.items() if sub.data[CONF_CAMERA_ID] == "CAM-yard")
    entities, devices = er.async_get(hass), dr.async_get(hass)
    yard_sensor = entities.async_get_entity_id("sensor", DOMAIN, f"{yard_id}_last_event")
    assert yard_sensor is not None

    assert hass.config_entries.async_remove_subentry(entry, yard_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert [sub.subentry_type for sub in entry.subentries.values()] == [SUBENTRY_CAMERA]
    assert entities.async_get_entity_id("sensor", DOMAIN, f"{yard_id}_last_event") is None
    assert hass.states.get(yard_sensor) is None
    assert devices.async_get_device_by_identifier((DOMAIN, yard_id), entry.entry_id) is None
    hass.states.async_set(YARD_MOTION, "on")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert simulator.events == []
    # The other mapping goes on.
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["camera_id"] == "CAM-front"
