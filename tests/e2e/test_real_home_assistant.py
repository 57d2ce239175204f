"""End to end: a real Home Assistant process, set up through its HTTP API as a user would, against the simulator.

One scenario, in the order a user lives it: onboarding; the config flow with a wrong secret (invalid_auth) and an
insecure URL (insecure_url) before the right input; options; a camera and an alarm panel subentry, and the same
camera again (already_mapped); then motion, arming, the shipped blueprint, a triggered panel, the action with its
response, a trouble; then a restart, after which the entry and its subentries are back and keep forwarding.
Every error is checked as the frontend shows it: the error key of the form, and its English text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import re
from typing import Any

import pytest

from custom_components.chekt.const import DOMAIN
from tests.conftest import AUDIENCE, CLIENT_ID, SECRET
from tests.e2e.harness import (
    CAMERA,
    CAMERA_ID,
    CAMERA_LAST_EVENT,
    DOOR_SWITCH,
    LOCATION_ID,
    MOTION,
    MOTION_SWITCH,
    OFFLINE_SWITCH,
    PANEL,
    PANEL_CAMERA_ID,
    PANEL_LAST_EVENT,
    RECORDER_ID,
    REPO_ROOT,
    ChektAccount,
    DevUser,
    HassApi,
    HassProcess,
    async_add_demo_camera,
    async_settle_entry,
    camera_mapping,
    expect,
    panel_mapping,
)
from tests.simulator import ChektSimulator, EventRecord, MediaKind

pytestmark = pytest.mark.e2e

USER = DevUser(name="E2E", username="e2e", password="e2e-password")
WAIT = 15.0
# Home Assistant's own log lines about the integration; anything at ERROR or a traceback through it fails the test.
CHEKT_PROBLEM = re.compile(r"^.* (ERROR|CRITICAL) .*\[custom_components\.chekt[^\]]*\].*$", re.MULTILINE)


def english() -> dict[str, Any]:
    """The integration's English texts, as shipped."""
    data: dict[str, Any] = json.loads((REPO_ROOT / "custom_components/chekt/translations/en.json").read_text())
    return data


def bodies(simulator: ChektSimulator, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The accepted event bodies that match, in the order they were accepted."""
    return [record.body for record in simulator.accepted.values() if predicate(record.body)]


def event_of(event_type: str, status: str, camera_id: str, **payload: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate for one kind of event of one CHeKT camera, with some payload fields."""

    def matches(body: dict[str, Any]) -> bool:
        return (
            body["event_type"] == event_type
            and body["event_status"] == status
            and body["camera_id"] == camera_id
            and all(body["payload"].get(key) == value for key, value in payload.items())
        )

    return matches


async def wait_for_event(
    simulator: ChektSimulator, predicate: Callable[[dict[str, Any]], bool], count: int = 1
) -> dict[str, Any]:
    """Wait until `count` matching events were accepted; the last one."""
    await simulator.wait_for(lambda: len(bodies(simulator, predicate)) >= count, timeout=WAIT)
    return bodies(simulator, predicate)[count - 1]


async def wait_for_snapshots(simulator: ChektSimulator, event_id: str, count: int) -> None:
    """Wait until `count` snapshots of the event were uploaded and called back, each upload before its callback."""

    def done() -> bool:
        callbacks = [c for c in simulator.callbacks if c.event_id == event_id and c.status == 200]
        return len(callbacks) >= count

    await simulator.wait_for(done, timeout=WAIT)
    uploads = [upload for upload in simulator.uploads if upload.event_id == event_id]
    assert sorted(upload.seq for upload in uploads) == list(range(count))
    assert all(upload.kind is MediaKind.SNAPSHOT and upload.valid_media for upload in uploads)
    assert all(upload.content_type == "image/jpeg" and upload.size > 1000 for upload in uploads)
    callbacks = [c for c in simulator.callbacks if c.event_id == event_id]
    assert all(callback.upload_preceded for callback in callbacks)


def record_of(simulator: ChektSimulator, event_id: str) -> EventRecord:
    """The accepted request of an event."""
    return simulator.accepted[event_id]


async def add_entry_with_bad_input_first(
    api: HassApi, simulator: ChektSimulator, texts: dict[str, Any], resources: dict[str, str]
) -> str:
    """The config flow: wrong secret, then an insecure URL, then the right input. The entry id."""
    right = ChektAccount(
        api_url=simulator.base_url,
        token_url=simulator.token_url,
        client_id=CLIENT_ID,
        secret=SECRET,
        audience=AUDIENCE,
    )
    wrong_secret = {**right.user_step(), "signing_key": "not-the-secret-" + "x" * 32}
    step = await api.start_flow(DOMAIN)
    expect(step, "form", step_id="user")
    flow_id = step["flow_id"]
    assert [field["name"] for field in step["data_schema"]] == [
        "environment",
        "token_url",
        "client_id",
        "signing_key",
        "advanced",
    ]

    step = await api.submit_flow(flow_id, wrong_secret)
    expect(step, "form", step_id="custom_url")
    step = await api.submit_flow(flow_id, {"api_url": right.api_url})
    expect(step, "form", step_id="user", errors={"base": "invalid_auth"})
    assert resources["component.chekt.config.error.invalid_auth"] == texts["config"]["error"]["invalid_auth"]
    assert "refused the credentials" in resources["component.chekt.config.error.invalid_auth"]

    step = await api.submit_flow(flow_id, right.user_step())
    expect(step, "form", step_id="custom_url")
    step = await api.submit_flow(flow_id, {"api_url": "http://chekt.example.com"})
    expect(step, "form", step_id="custom_url", errors={"api_url": "insecure_url"})
    assert resources["component.chekt.config.error.insecure_url"] == texts["config"]["error"]["insecure_url"]
    assert "https" in resources["component.chekt.config.error.insecure_url"]

    done = await api.submit_flow(flow_id, {"api_url": right.api_url})
    expect(done, "create_entry", title=f"CHeKT ({CLIENT_ID})")
    entry_id: str = done["result"]["entry_id"]
    # The token requests: the wrong secret was refused, the right one accepted (by the flow, then the entry).
    statuses = [request.status for request in simulator.token_requests]
    assert statuses[0] == 401
    assert set(statuses[1:]) == {200}
    return entry_id


async def set_options(api: HassApi, entry_id: str) -> None:
    """Snapshots 0.2 s apart, troubles reported at once."""
    step = await api.start_options_flow(entry_id)
    expect(step, "form", step_id="init")
    expect(
        await api.submit_options_flow(
            step["flow_id"], {"snapshot_interval": 0.2, "trouble_delay": 0, "late_after": 300}
        ),
        "create_entry",
    )


async def add_subentries(api: HassApi, entry_id: str, texts: dict[str, Any]) -> None:
    """The camera and the alarm panel, then the same camera again (refused as already mapped)."""
    for subentry_type, data in (("camera", camera_mapping()), ("alarm_panel", panel_mapping())):
        step = await api.start_subentry_flow(entry_id, subentry_type)
        expect(step, "form", step_id="user")
        expect(await api.submit_subentry_flow(step["flow_id"], data), "create_entry")

    step = await api.start_subentry_flow(entry_id, "camera")
    step = await api.submit_subentry_flow(step["flow_id"], camera_mapping(camera_id="ANOTHER-ID"))
    expect(step, "form", step_id="user", errors={"camera_entity_id": "already_mapped"})
    resources = await api.translations("config_subentries", DOMAIN)
    key = "component.chekt.config_subentries.camera.error.already_mapped"
    assert resources[key] == texts["config_subentries"]["camera"]["error"]["already_mapped"]
    assert "already mapped" in resources[key]
    await api.delete(f"/api/config/config_entries/subentries/flow/{step['flow_id']}")


async def wait_until_loaded(api: HassApi, subentries: int) -> dict[str, Any]:
    """The CHeKT entry once it is loaded with `subentries` subentries, and its cloud connection is on.

    Each subentry added reloads the entry by itself; the mapped devices' sensors appear once a load included
    their subentry. The reloads still queued are waited for by asking for one more (the integration page's
    "Reload"), which runs after them.
    """
    for _ in range(150):
        entries = await api.config_entries(DOMAIN)
        if entries and entries[0]["state"] == "loaded" and entries[0]["num_subentries"] == subentries:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the CHeKT entry did not load: {entries}")
    for sensor in (CAMERA_LAST_EVENT, PANEL_LAST_EVENT):
        await api.wait_for(sensor, lambda state: state is not None and state["state"] != "unavailable")
    await async_settle_entry(api, entries[0]["entry_id"])
    await api.wait_for_state(f"binary_sensor.chekt_{CLIENT_ID.replace('-', '_')}_cloud_connection", "on")
    return entries[0]


async def motion_alarm(api: HassApi, simulator: ChektSimulator, nth: int) -> dict[str, Any]:
    """Motion on: an alarm with three JPEG snapshots, uploaded and called back; motion off: its end."""
    await api.call("input_boolean", "turn_on", {"entity_id": MOTION_SWITCH})
    alarm = await wait_for_event(simulator, event_of("alarm", "active", CAMERA_ID, entity_id=MOTION), nth)
    assert alarm["location_id"] == LOCATION_ID
    assert alarm["recorder_id"] == RECORDER_ID
    assert alarm["should_signal_to_monitoring_center"] is True
    assert alarm["upload_snapshot_count"] == 3
    assert alarm["payload"]["device_class"] == "motion"
    assert alarm["payload"]["friendly_name"] == "Demo motion"
    await wait_for_snapshots(simulator, alarm["event_id"], 3)
    await api.call("input_boolean", "turn_off", {"entity_id": MOTION_SWITCH})
    await wait_for_event(simulator, event_of("alarm", "inactive", CAMERA_ID, entity_id=MOTION), nth)
    return alarm


async def arming_blueprint_and_panel_alarm(api: HassApi, simulator: ChektSimulator) -> None:
    """Arming; a door opened while armed (the shipped blueprint); the panel triggered; disarming."""
    await api.call("alarm_control_panel", "alarm_arm_away", {"entity_id": PANEL})
    armed = await wait_for_event(simulator, event_of("arming", "active", PANEL_CAMERA_ID, arming_state="armed_away"))
    assert armed["location_id"] == LOCATION_ID
    assert "recorder_id" not in armed or armed["recorder_id"] in (None, "")

    await api.call("input_boolean", "turn_on", {"entity_id": DOOR_SWITCH})
    door = await wait_for_event(simulator, event_of("alarm", "active", CAMERA_ID, source="action"))
    assert door["payload"]["zone"] == "Demo door"
    assert door["payload"]["arming_state"] == "armed_away"
    assert door["upload_snapshot_count"] == 2
    await wait_for_snapshots(simulator, door["event_id"], 2)
    await api.call("input_boolean", "turn_off", {"entity_id": DOOR_SWITCH})

    await api.call("alarm_control_panel", "alarm_trigger", {"entity_id": PANEL})
    await wait_for_event(simulator, event_of("alarm", "active", PANEL_CAMERA_ID))
    await api.call("alarm_control_panel", "alarm_disarm", {"entity_id": PANEL})
    await wait_for_event(simulator, event_of("arming", "inactive", PANEL_CAMERA_ID, arming_state="disarmed"))
    ended = bodies(simulator, event_of("alarm", "inactive", PANEL_CAMERA_ID))
    assert len(ended) == 1


async def action_with_response(api: HassApi, simulator: ChektSimulator) -> None:
    """`chekt.send_event` through the REST API, with its response data."""
    response = await api.call_with_response(
        DOMAIN,
        "send_event",
        {"camera_entity_id": CAMERA, "event_type": "alarm", "snapshot_count": 1, "payload": {"note": "e2e"}},
    )
    assert response["status"] == "accepted"
    assert response["reason"] is None
    body = record_of(simulator, response["event_id"]).body
    assert body["payload"] == {"source": "action", "note": "e2e"}
    await wait_for_snapshots(simulator, response["event_id"], 1)


async def trouble(api: HassApi, simulator: ChektSimulator) -> None:
    """The sensors go offline: a trouble of the camera's mapping (the delay is 0); back online: its end."""
    await api.call("input_boolean", "turn_on", {"entity_id": OFFLINE_SWITCH})
    await api.wait_for_state(MOTION, "unavailable")
    await wait_for_event(simulator, event_of("trouble", "active", CAMERA_ID, entity_id=MOTION))
    await api.call("input_boolean", "turn_off", {"entity_id": OFFLINE_SWITCH})
    await wait_for_event(simulator, event_of("trouble", "inactive", CAMERA_ID))


def assert_no_integration_errors(hass: HassProcess) -> None:
    """Home Assistant logged no error of the integration, and no traceback through it."""
    log = hass.log_text()
    assert not CHEKT_PROBLEM.findall(log), CHEKT_PROBLEM.findall(log)
    tracebacks = [
        block
        for block in log.split("Traceback (most recent call last):")[1:]
        if "custom_components/chekt" in block or "custom_components.chekt" in block
    ]
    assert not tracebacks, tracebacks[0][:2000]


async def test_real_home_assistant_end_to_end(
    simulator: ChektSimulator, hass_process: HassProcess, hass_api: HassApi
) -> None:
    """Set up through the UI's API, forward everything, restart, and forward again."""
    api = hass_api
    await hass_process.start()
    assert not await api.onboarding_done()
    await api.onboard(USER)
    assert await api.onboarding_done()
    await api.wait_until_running()
    await async_add_demo_camera(api, hass_process.config_dir)

    texts = english()
    resources = await api.translations("config", DOMAIN)
    entry_id = await add_entry_with_bad_input_first(api, simulator, texts, resources)
    await set_options(api, entry_id)
    await add_subentries(api, entry_id, texts)
    await wait_until_loaded(api, subentries=2)

    first = await motion_alarm(api, simulator, 1)
    await arming_blueprint_and_panel_alarm(api, simulator)
    await action_with_response(api, simulator)
    await trouble(api, simulator)
    assert_no_integration_errors(hass_process)

    # A restart: the entry and both subentries come back from storage and keep forwarding.
    assert await hass_process.stop() == 0
    sent_before = len(simulator.accepted)
    await hass_process.start()
    await api.login(USER)
    await api.wait_until_running()
    entry = await wait_until_loaded(api, subentries=2)
    assert entry["entry_id"] == entry_id
    subentries = await api.websocket({"type": "config_entries/subentries/list", "entry_id": entry_id})
    assert sorted((s["subentry_type"], s["title"]) for s in subentries) == [
        ("alarm_panel", f"Demo alarm ({PANEL_CAMERA_ID})"),
        ("camera", f"Demo camera ({CAMERA_ID})"),
    ]
    second = await motion_alarm(api, simulator, 2)
    assert second["event_id"] != first["event_id"]
    # Nothing was sent twice: no event accepted again, none replayed by the restart.
    assert simulator.duplicate_accepts == 0
    assert len(simulator.accepted) == sent_before + 2
    assert_no_integration_errors(hass_process)
