"""The entities: the account's connectivity and delivery sensors, and a last-event sensor per mapping."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import json
from pathlib import Path
import time
from typing import Any

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN, EntityCategory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.chekt import outbox as outbox_module
from custom_components.chekt.clock import Clock
from custom_components.chekt.const import DOMAIN, SUBENTRY_ALARM_PANEL, SUBENTRY_CAMERA
from tests.common import FakeCamera, camera_subentry, entities_refreshed, panel_subentry, setup_cameras, setup_entry
from tests.simulator import ChektSimulator, Endpoint, Fault, FaultKind

COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN
MOTION = "binary_sensor.front_motion"
PANEL = "alarm_control_panel.house"


@pytest.fixture
async def camera(hass: HomeAssistant) -> FakeCamera:
    front = FakeCamera("front")
    await setup_cameras(hass, front)
    return front


def entity_id_of(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


def state_of(hass: HomeAssistant, platform: str, unique_id: str) -> Any:
    state = hass.states.get(entity_id_of(hass, platform, unique_id))
    assert state is not None, unique_id
    return state


def subentry_id_of(entry: MockConfigEntry, subentry_type: str) -> str:
    return next(sid for sid, sub in entry.subentries.items() if sub.subentry_type == subentry_type)


def bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    return [record.body for record in sim.events if record.status == 201]


async def test_account_device_and_entities(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    entry = await setup_entry(hass, entry_data)
    device = dr.async_get(hass).async_get_device_by_identifier((DOMAIN, entry.entry_id), entry.entry_id)
    assert device is not None
    assert device.name == entry.title == "CHeKT (ha-test-client)"
    assert device.manufacturer == "CHeKT"
    assert device.entry_type is DeviceEntryType.SERVICE
    assert device.config_entry_id == entry.entry_id
    assert device.config_subentry_id is None

    registry = er.async_get(hass)
    expected = {
        ("binary_sensor", "cloud"): ("Cloud connection", EntityCategory.DIAGNOSTIC),
        ("sensor", "last_event"): ("Last event", None),
        ("sensor", "events_sent"): ("Events sent", EntityCategory.DIAGNOSTIC),
        ("sensor", "backlog"): ("Backlog", EntityCategory.DIAGNOSTIC),
    }
    for (platform, key), (name, category) in expected.items():
        entity = registry.async_get(entity_id_of(hass, platform, f"{entry.entry_id}_{key}"))
        assert entity is not None
        assert entity.translation_key == key
        assert entity.has_entity_name
        assert entity.entity_category == category
        assert entity.device_id == device.id
        assert entity.config_subentry_id is None
        state = hass.states.get(entity.entity_id)
        assert state is not None
        assert state.attributes["friendly_name"] == f"CHeKT (ha-test-client) {name}"
    assert entity_id_of(hass, "binary_sensor", f"{entry.entry_id}_cloud") == (
        "binary_sensor.chekt_ha_test_client_cloud_connection"
    )

    # The credentials check at setup reached the token endpoint: the cloud is there.
    await hass.async_block_till_done(wait_background_tasks=True)
    await entities_refreshed(hass)
    assert state_of(hass, "binary_sensor", f"{entry.entry_id}_cloud").state == STATE_ON
    last = state_of(hass, "sensor", f"{entry.entry_id}_last_event")
    assert last.state == STATE_UNKNOWN
    assert last.attributes["device_class"] == "timestamp"
    assert (last.attributes["event_type"], last.attributes["status"], last.attributes["reason"]) == (
        None,
        None,
        None,
    )
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"


async def test_a_burst_of_events_writes_the_sensors_a_few_times_and_never_inside_the_alarm(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await entities_refreshed(hass)
    account_sensors = [
        entity_id_of(hass, "sensor", f"{entry.entry_id}_{key}") for key in ("backlog", "events_sent", "last_event")
    ]
    mapped = entity_id_of(hass, "sensor", f"{subentry_id_of(entry, SUBENTRY_CAMERA)}_last_event")
    writes: list[str] = []
    written_in_alarm: list[str] = []
    in_alarm = False

    @callback
    def written(event: Event[EventStateChangedData]) -> None:
        writes.append(event.data["entity_id"])
        if in_alarm:
            written_in_alarm.append(event.data["entity_id"])

    async_track_state_change_event(hass, [*account_sensors, mapped], written)
    started = time.monotonic()
    toggles = 20
    for number in range(toggles):
        in_alarm = True
        hass.states.async_set(MOTION, "on" if number % 2 == 0 else "off")
        in_alarm = False
    await simulator.wait_for(lambda: len(bodies(simulator)) == toggles)
    await entities_refreshed(hass)
    elapsed = time.monotonic() - started

    # Every event moved each sensor (the backlog one up and one down); each was written at most once per
    # refresh (the backlog perhaps never: it may have been back at 0 each time), and shows where things ended.
    refreshes = int(elapsed / outbox_module.STATE_REFRESH) + 1
    for entity_id in (*account_sensors, mapped):
        assert writes.count(entity_id) <= refreshes, (entity_id, writes.count(entity_id), elapsed)
    assert set(writes) >= {*account_sensors[1:], mapped}
    assert written_in_alarm == []
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == str(toggles)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_last_event").attributes["status"] == "accepted"


async def test_sensors_follow_the_events(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    before = dt_util.utcnow()

    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await hass.async_block_till_done(wait_background_tasks=True)  # the reply reached the outbox too

    await entities_refreshed(hass)
    assert state_of(hass, "binary_sensor", f"{entry.entry_id}_cloud").state == STATE_ON
    last = state_of(hass, "sensor", f"{entry.entry_id}_last_event")
    assert dt_util.parse_datetime(last.state) is not None
    assert dt_util.parse_datetime(last.state) >= before.replace(microsecond=0)
    assert (last.attributes["event_type"], last.attributes["status"], last.attributes["reason"]) == (
        "alarm",
        "accepted",
        None,
    )
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "1"
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"

    simulator.disarmed_locations.add("LOC1")
    hass.states.async_set(MOTION, "off")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    await hass.async_block_till_done(wait_background_tasks=True)

    await entities_refreshed(hass)
    last = state_of(hass, "sensor", f"{entry.entry_id}_last_event")
    assert (last.attributes["event_type"], last.attributes["status"]) == ("alarm", "discarded")
    assert last.attributes["reason"]
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "2"
    mapped = state_of(hass, "sensor", f"{subentry_id_of(entry, SUBENTRY_CAMERA)}_last_event")
    assert mapped.state == last.state
    assert (mapped.attributes["status"], mapped.attributes["reason"]) == (
        "discarded",
        last.attributes["reason"],
    )


class FastForwardClock(Clock):
    """The outbox's clock for the connectivity tests: every wait of the outbox passes at once, in its time only.

    The cloud counts as unreachable only after failing for a while (`OutboxLimits.unreachable_after`); with this
    clock that while passes in a few milliseconds of retries, however long it is, and nothing depends on timing.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return dt_util.utcnow() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.offset += seconds
        await asyncio.sleep(0.001)  # let the other tasks run (a stopped cloud refuses within that)


@pytest.fixture
def fast_forward(monkeypatch: pytest.MonkeyPatch) -> FastForwardClock:
    """Have the entry's outbox use a `FastForwardClock` (where the outbox module looks its clock up)."""
    clock = FastForwardClock()
    monkeypatch.setattr(outbox_module, "Clock", lambda: clock)
    return clock


def cloud_states(hass: HomeAssistant, entity_id: str) -> list[str]:
    """Every state `entity_id` takes from now on."""
    states: list[str] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if (new_state := event.data["new_state"]) is not None:
            states.append(new_state.state)

    async_track_state_change_event(hass, entity_id, changed)
    return states


async def test_connectivity_off_while_the_cloud_is_down(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: FakeCamera,
    fast_forward: FastForwardClock,
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await hass.async_block_till_done(wait_background_tasks=True)
    await entities_refreshed(hass)
    cloud = entity_id_of(hass, "binary_sensor", f"{entry.entry_id}_cloud")
    assert hass.states.get(cloud).state == STATE_ON

    await simulator.stop()
    hass.states.async_set(MOTION, "off")
    await simulator.wait_for(lambda: hass.states.get(cloud).state == STATE_OFF)

    # The event waits for the cloud: counted in the backlog, not as sent.
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "1"
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "1"
    last = state_of(hass, "sensor", f"{entry.entry_id}_last_event")
    assert last.attributes["status"] == "accepted"  # still the last settled event

    # Back on with the cloud, and the event goes out.
    await simulator.start()
    await simulator.wait_for(lambda: hass.states.get(cloud).state == STATE_ON)
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert bodies(simulator)[1]["event_status"] == "inactive"
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "2"


async def test_a_failure_the_next_attempt_fixes_is_no_outage(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: FakeCamera,
    fast_forward: FastForwardClock,
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await hass.async_block_till_done(wait_background_tasks=True)
    cloud = entity_id_of(hass, "binary_sensor", f"{entry.entry_id}_cloud")
    states = cloud_states(hass, cloud)
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.STATUS, status=503))

    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [record.status for record in simulator.events] == [503, 201]
    assert simulator.events[0].body["event_id"] == simulator.events[1].body["event_id"]
    assert STATE_OFF not in states
    await entities_refreshed(hass)
    assert hass.states.get(cloud).state == STATE_ON
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "1"


async def test_rejected_event_is_shown_but_not_counted(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.STATUS, status=404))

    hass.states.async_set(MOTION, "on")
    last_id = entity_id_of(hass, "sensor", f"{entry.entry_id}_last_event")
    await simulator.wait_for(lambda: hass.states.get(last_id).attributes["status"] == "rejected")

    assert hass.states.get(last_id).attributes["reason"] == "injected status fault"
    await entities_refreshed(hass)
    assert state_of(hass, "sensor", f"{entry.entry_id}_events_sent").state == "0"
    assert state_of(hass, "sensor", f"{entry.entry_id}_backlog").state == "0"


async def test_a_device_and_a_last_event_sensor_per_subentry(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    hass.states.async_set(PANEL, "disarmed")
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0), panel_subentry())
    camera_id = subentry_id_of(entry, SUBENTRY_CAMERA)
    panel_id = subentry_id_of(entry, SUBENTRY_ALARM_PANEL)
    devices = dr.async_get(hass)
    registry = er.async_get(hass)

    for subentry_id, model in ((camera_id, "Camera"), (panel_id, "Alarm panel")):
        subentry = entry.subentries[subentry_id]
        device = devices.async_get_device_by_identifier((DOMAIN, subentry_id), entry.entry_id)
        assert device is not None
        assert (device.name, device.model, device.manufacturer) == (subentry.title, model, "CHeKT")
        assert (device.config_entry_id, device.config_subentry_id) == (entry.entry_id, subentry_id)
        entity = registry.async_get(entity_id_of(hass, "sensor", f"{subentry_id}_last_event"))
        assert entity is not None
        assert entity.config_subentry_id == subentry_id
        assert entity.device_id == device.id
        assert entity.translation_key == "last_event"
        assert entity.has_entity_name
        assert entity.entity_category is None
        state = hass.states.get(entity.entity_id)
        assert state is not None
        assert state.state == STATE_UNKNOWN
        assert state.attributes["friendly_name"] == f"{subentry.title} Last event"
        assert (state.attributes["status"], state.attributes["reason"]) == (None, None)
    # Every entity of the entry is one of these, on one of these devices.
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    assert len(entities) == 6
    assert len(dr.async_entries_for_config_entry(devices, entry.entry_id)) == 3

    # An event of the panel shows on the panel's sensor only.
    hass.states.async_set(PANEL, "armed_away")
    panel_sensor = entity_id_of(hass, "sensor", f"{panel_id}_last_event")
    await simulator.wait_for(lambda: hass.states.get(panel_sensor).attributes["status"] == "accepted")
    camera_sensor = state_of(hass, "sensor", f"{camera_id}_last_event")
    assert camera_sensor.state == STATE_UNKNOWN


# --- translations and icons of the entities ---


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((COMPONENT / name).read_text(encoding="utf-8"))
    return data


def test_english_is_strings() -> None:
    assert _json("translations/en.json") == _json("strings.json")


def test_every_entity_has_a_name_and_an_icon() -> None:
    import re

    keys = {
        (platform, key)
        for platform in ("binary_sensor", "sensor")
        for key in re.findall(
            r'_attr_translation_key = "(\w+)"', (COMPONENT / f"{platform}.py").read_text(encoding="utf-8")
        )
    }
    strings = _json("strings.json")["entity"]
    icons = _json("icons.json")["entity"]
    assert keys == {(platform, key) for platform, entities in strings.items() for key in entities}
    assert keys == {(platform, key) for platform, entities in icons.items() for key in entities}
    for platform, key in keys:
        assert strings[platform][key]["name"]
    attributes = strings["sensor"]["last_event"]["state_attributes"]
    assert set(attributes) == {"event_type", "status", "reason"}
    assert set(attributes["event_type"]["state"]) == {"alarm", "trouble", "arming"}
    assert set(attributes["status"]["state"]) == {"accepted", "discarded", "rejected"}


def test_every_translation_key_is_translated() -> None:
    """Each `translation_key="..."` of the modules (exceptions, repairs) has a message with its placeholders."""
    import re

    strings = _json("strings.json")
    messages = {
        **{key: value["message"] for key, value in strings["exceptions"].items()},
        **{key: value["description"] for key, value in strings.get("issues", {}).items() if "description" in value},
    }
    used: dict[str, set[str]] = {}
    for module in COMPONENT.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        for match in re.finditer(r'(?<!_attr_)translation_key="(\w+)"', text):
            after = text[match.end() : match.end() + 300]
            placeholders = re.match(r",\s*translation_placeholders=\{([^}]*)\}", after)
            used[match.group(1)] = set(re.findall(r'"(\w+)":', placeholders.group(1))) if placeholders else set()
    assert {"invalid_configuration", "camera_not_mapped"} <= set(used)
    for key, placeholders in used.items():
        assert key in messages, key
        assert set(re.findall(r"{(\w+)}", messages[key])) == placeholders, key
