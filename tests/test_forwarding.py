"""The event rules end to end: real Home Assistant states in, what the local CHeKT cloud received out."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from tests.common import FakeCamera, camera_subentry, panel_subentry, setup_cameras, setup_entry
from tests.conftest import SECRET
from tests.simulator import ChektSimulator

MOTION = "binary_sensor.front_motion"
DOOR = "binary_sensor.front_door"
PANEL = "alarm_control_panel.house"


@pytest.fixture
async def camera(hass: HomeAssistant) -> FakeCamera:
    front = FakeCamera("front")
    await setup_cameras(hass, front)
    return front


def bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    """The bodies the cloud accepted or discarded, in arrival order."""
    return [record.body for record in sim.events if record.status == 201]


async def test_alarm_active_with_snapshot_then_inactive(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off", {"friendly_name": "Front motion", "device_class": "motion"})
    await setup_entry(hass, entry_data, camera_subentry())

    hass.states.async_set(MOTION, "on", {"friendly_name": "Front motion", "device_class": "motion"})
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    active = bodies(simulator)[0]
    assert (active["event_type"], active["event_status"]) == ("alarm", "active")
    assert (active["location_id"], active["recorder_id"], active["camera_id"]) == (
        "LOC1",
        "REC1",
        "CAM-front",
    )
    assert active["upload_snapshot_count"] == 1
    assert active["should_signal_to_monitoring_center"] is True
    assert active["payload"]["entity_id"] == MOTION
    assert active["payload"]["friendly_name"] == "Front motion"
    assert active["payload"]["device_class"] == "motion"
    upload = simulator.uploads[0]
    assert (upload.content_type, upload.valid_media, upload.data) == ("image/jpeg", True, camera.image)
    assert simulator.callbacks[0].upload_preceded

    hass.states.async_set(MOTION, "off", {"friendly_name": "Front motion", "device_class": "motion"})
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    inactive = bodies(simulator)[1]
    assert (inactive["event_type"], inactive["event_status"]) == ("alarm", "inactive")
    assert inactive["upload_snapshot_count"] == 0
    assert inactive["event_id"] != active["event_id"]


async def test_inactive_only_when_every_alarm_entity_is_off(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    hass.states.async_set(DOOR, "off")
    await setup_entry(hass, entry_data, camera_subentry(alarm_entity_ids=(MOTION, DOOR), snapshot_count=0))

    hass.states.async_set(MOTION, "on")
    hass.states.async_set(DOOR, "on")
    hass.states.async_set(MOTION, "off")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    hass.states.async_set(DOOR, "off")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 3)
    await hass.async_block_till_done()
    assert [(b["event_status"], b["payload"]["entity_id"]) for b in bodies(simulator)] == [
        ("active", MOTION),
        ("active", DOOR),
        ("inactive", DOOR),
    ]


async def test_nothing_at_start_up_or_out_of_unavailable(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "on")  # already on when the integration starts: restored, not new
    hass.states.async_set(PANEL, "armed_away")
    await setup_entry(hass, entry_data, camera_subentry(), panel_subentry())
    hass.states.async_set(MOTION, "unavailable")
    hass.states.async_set(MOTION, "on")
    hass.states.async_set(MOTION, "unknown")
    hass.states.async_set(MOTION, "on")
    await hass.async_block_till_done()
    # A later real event still goes out, proving the entry was listening all along.
    hass.states.async_set(MOTION, "off")
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["event_status"] == "active"


async def test_several_snapshots_each_uploaded_then_confirmed(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    hass.states.async_set(MOTION, "off")
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=3))
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.callbacks) == 3)
    assert sorted(upload.seq for upload in simulator.uploads) == [0, 1, 2]
    assert all(upload.content_type == "image/jpeg" and upload.valid_media for upload in simulator.uploads)
    assert all(callback.upload_preceded for callback in simulator.callbacks)
    assert camera.requests == 3


async def test_discarded_event_uploads_nothing(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    simulator.disarmed_locations.add("LOC1")
    hass.states.async_set(MOTION, "off")
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=2))
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await hass.async_block_till_done()
    assert simulator.events[0].response is not None
    assert simulator.events[0].response["status"] == "discarded"
    assert simulator.uploads == []
    assert simulator.callbacks == []


async def test_failed_snapshot_never_holds_back_the_event(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    camera.failing = True
    hass.states.async_set(MOTION, "off")
    await setup_entry(hass, entry_data, camera_subentry())
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    await hass.async_block_till_done()
    assert simulator.uploads == []


async def test_arming_and_panel_alarm(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    hass.states.async_set(PANEL, "disarmed", {"changed_by": "Keypad 1"})
    await setup_entry(hass, entry_data, panel_subentry())
    for state in ("armed_away", "triggered", "armed_away", "disarmed"):
        hass.states.async_set(PANEL, state, {"changed_by": "Keypad 1"})
    await simulator.wait_for(lambda: len(bodies(simulator)) == 4)
    sent = bodies(simulator)
    assert [(b["event_type"], b["event_status"]) for b in sent] == [
        ("arming", "active"),
        ("alarm", "active"),
        ("alarm", "inactive"),
        ("arming", "inactive"),
    ]
    assert sent[0]["payload"]["arming_state"] == "armed_away"
    assert sent[0]["payload"]["changed_by"] == "Keypad 1"
    assert sent[3]["payload"]["arming_state"] == "disarmed"
    assert all("recorder_id" not in body for body in sent)
    assert all(body["camera_id"] == "CAM-PANEL" for body in sent)


async def test_trouble_only_after_the_delay(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    hass.states.async_set(MOTION, "off")
    await setup_entry(hass, entry_data, camera_subentry(camera_entity_id="camera.yard"), trouble_delay=30)

    hass.states.async_set(MOTION, "unavailable")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=10))
    hass.states.async_set(MOTION, "off")  # back within the delay: no trouble at all
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=40))
    await hass.async_block_till_done()
    assert bodies(simulator) == []

    hass.states.async_set(MOTION, "unavailable")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    hass.states.async_set(MOTION, "off")
    await simulator.wait_for(lambda: len(bodies(simulator)) == 2)
    assert [(b["event_type"], b["event_status"]) for b in bodies(simulator)] == [
        ("trouble", "active"),
        ("trouble", "inactive"),
    ]
    assert bodies(simulator)[0]["payload"]["entity_id"] == MOTION


async def test_no_secret_in_debug_logs(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: FakeCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hass.states.async_set(MOTION, "off")
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=2))
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.callbacks) == 2)
    token = simulator.events[0].headers["Authorization"].removeprefix("Bearer ")
    response = simulator.events[0].response
    assert response is not None
    secrets = [SECRET, token]
    for target in response["uploads"]["snapshots"]:
        secrets += [target["upload_put_url"], target["callback_put_url"]]
        secrets.append(target["callback_put_url"].split("access_token=")[1])
    assert "chekt" in caplog.text.lower()
    for secret in secrets:
        assert secret not in caplog.text
