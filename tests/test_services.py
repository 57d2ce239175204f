"""The `chekt.send_event` action end to end: a real service call in, what the local CHeKT cloud received."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service import async_get_all_descriptions
from PIL import Image
import probatio as vol
import pytest
import yaml

from custom_components.chekt.api import EventStatus, EventType
from custom_components.chekt.const import DOMAIN, SERVICE_SEND_EVENT
from custom_components.chekt.services import SEND_EVENT_SCHEMA
from tests.common import FakeCamera, camera_subentry, setup_cameras, setup_entry
from tests.simulator import ChektSimulator, Endpoint, Fault, FaultKind

COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN
CAMERA = "camera.front"


@pytest.fixture
async def camera(hass: HomeAssistant) -> FakeCamera:
    front = FakeCamera("front")
    await setup_cameras(hass, front)
    return front


def bodies(sim: ChektSimulator) -> list[dict[str, Any]]:
    """The bodies the cloud accepted or discarded, in arrival order."""
    return [record.body for record in sim.events if record.status == 201]


async def send_event(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Call the action and return its response."""
    response = await hass.services.async_call(
        DOMAIN, SERVICE_SEND_EVENT, {"camera_entity_id": CAMERA, **data}, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def test_accepted_with_the_mapping_defaults_and_a_snapshot(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())

    response = await send_event(hass)

    assert response["status"] == "accepted"
    assert response["reason"] is None
    body = bodies(simulator)[0]
    assert body["event_id"] == response["event_id"]
    assert (body["event_type"], body["event_status"]) == ("alarm", "active")
    assert (body["location_id"], body["recorder_id"], body["camera_id"]) == ("LOC1", "REC1", "CAM-front")
    assert body["should_signal_to_monitoring_center"] is True
    assert body["upload_snapshot_count"] == 1
    assert (body["upload_short_mp4"], body["upload_event_mp4"]) == (False, False)
    assert body["payload"] == {"source": "action"}
    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    upload = simulator.uploads[0]
    assert (upload.content_type, upload.valid_media, upload.data) == ("image/jpeg", True, camera.image)
    assert simulator.callbacks[0].upload_preceded


async def test_overrides_reach_the_cloud(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())

    response = await send_event(
        hass,
        event_type="trouble",
        event_status="inactive",
        signal_monitoring_center=False,
        snapshot_count=3,
        payload={"zone": "Front door", "note": "Opened while armed"},
    )

    assert response["status"] == "accepted"
    body = bodies(simulator)[0]
    assert (body["event_type"], body["event_status"]) == ("trouble", "inactive")
    assert body["should_signal_to_monitoring_center"] is False
    assert body["upload_snapshot_count"] == 3
    assert body["payload"] == {"source": "action", "zone": "Front door", "note": "Opened while armed"}
    await simulator.wait_for(lambda: len(simulator.callbacks) == 3)
    assert sorted(upload.seq for upload in simulator.uploads) == [0, 1, 2]
    assert all(upload.valid_media for upload in simulator.uploads)
    assert camera.requests == 3


async def test_no_snapshots_when_overridden_to_zero(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=2))

    response = await send_event(hass, event_type="arming", snapshot_count=0)

    assert response["status"] == "accepted"
    body = bodies(simulator)[0]
    assert (body["event_type"], body["upload_snapshot_count"]) == ("arming", 0)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert simulator.uploads == []
    assert camera.requests == 0


async def test_the_mapping_defaults_the_optional_fields(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(
        hass, entry_data, camera_subentry(signal_monitoring_center=False, snapshot_count=0, recorder_id="")
    )

    await send_event(hass)

    body = bodies(simulator)[0]
    assert body["should_signal_to_monitoring_center"] is False
    assert body["upload_snapshot_count"] == 0
    assert "recorder_id" not in body


def make_png() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 10)).save(output, format="PNG")
    return output.getvalue()


async def test_png_snapshot_is_sent_as_jpeg(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    png = FakeCamera("front", image=make_png())
    png.content_type = "image/png"
    await setup_cameras(hass, png)
    await setup_entry(hass, entry_data, camera_subentry())

    assert (await send_event(hass))["status"] == "accepted"

    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    upload = simulator.uploads[0]
    assert (upload.content_type, upload.valid_media) == ("image/jpeg", True)
    with Image.open(io.BytesIO(upload.data)) as picture:
        assert (picture.format, picture.size) == ("JPEG", (32, 24))


async def test_unreadable_snapshot_is_left_out(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    broken = FakeCamera("front", image=b"not a picture at all")
    broken.content_type = "image/png"
    await setup_cameras(hass, broken)
    await setup_entry(hass, entry_data, camera_subentry())

    assert (await send_event(hass))["status"] == "accepted"

    await hass.async_block_till_done(wait_background_tasks=True)
    assert broken.requests == 1
    assert simulator.uploads == []
    assert simulator.callbacks == []


async def test_failed_upload_is_retried(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=503))

    assert (await send_event(hass))["status"] == "accepted"

    await simulator.wait_for(lambda: len(simulator.callbacks) == 1)
    assert [fault.endpoint for fault in simulator.faults] == [Endpoint.UPLOAD]
    assert simulator.uploads[0].data == camera.image
    assert simulator.callbacks[0].upload_preceded


async def test_refused_upload_is_not_confirmed(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())
    simulator.inject(Fault(Endpoint.UPLOAD, FaultKind.STATUS, status=403))

    assert (await send_event(hass))["status"] == "accepted"

    await hass.async_block_till_done(wait_background_tasks=True)
    # Taken out of the simulator's list so that the fixture's teardown does not also fail on them.
    malformed = list(simulator.malformed)
    simulator.malformed.clear()
    assert [fault.endpoint for fault in simulator.faults] == [Endpoint.UPLOAD]
    assert simulator.uploads == []
    assert simulator.callbacks == []
    assert malformed == []


async def test_discarded_when_the_location_is_disarmed(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    simulator.disarmed_locations.add("LOC1")
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=2))

    response = await send_event(hass)

    assert response["status"] == "discarded"
    assert response["reason"]
    assert response["event_id"] == bodies(simulator)[0]["event_id"]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert simulator.uploads == []


async def test_rejected_when_the_cloud_refuses_the_event(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.STATUS, status=403))

    response = await send_event(hass)

    assert response["status"] == "rejected"
    assert response["reason"] == "injected status fault"
    assert len(simulator.events) == 1  # refused as such: never sent again
    await hass.async_block_till_done(wait_background_tasks=True)
    assert simulator.uploads == []


async def test_repeated_rejections_raise_a_repair_issue_until_one_is_accepted(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    entry = await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    issue_id = f"events_rejected_{entry.entry_id}"
    issues = ir.async_get(hass)
    simulator.inject(Fault(Endpoint.EVENTS, FaultKind.STATUS, status=403, count=3))

    assert (await send_event(hass))["status"] == "rejected"
    assert (await send_event(hass))["status"] == "rejected"
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # one or two may be a passing problem
    assert (await send_event(hass))["status"] == "rejected"
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "events_rejected"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == "3"

    assert (await send_event(hass))["status"] == "accepted"
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_queued_when_the_cloud_is_down(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await simulator.stop()

    with patch("custom_components.chekt.services.RESPONSE_WAIT", 0.01):
        response = await send_event(hass)

    assert response["status"] == "queued"
    assert response["reason"] is None
    assert response["event_id"]
    # The event is kept and goes out, under the id the action reported, once the cloud is back.
    await simulator.start()
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["event_id"] == response["event_id"]


async def test_without_response_returns_at_once(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    """Called without `response_variable`, the action does not wait for the cloud; the event still goes out."""
    await setup_entry(hass, entry_data, camera_subentry(snapshot_count=0))
    await simulator.stop()

    with patch("custom_components.chekt.services.RESPONSE_WAIT", 3600):
        call = asyncio.ensure_future(
            hass.services.async_call(DOMAIN, SERVICE_SEND_EVENT, {"camera_entity_id": CAMERA}, blocking=True)
        )
        await simulator.wait_for(call.done)
    assert call.result() is None

    await simulator.start()
    await simulator.wait_for(lambda: len(bodies(simulator)) == 1)
    assert bodies(simulator)[0]["payload"] == {"source": "action"}


async def test_camera_not_mapped(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    await setup_entry(hass, entry_data, camera_subentry(camera_entity_id="camera.other"))

    with pytest.raises(ServiceValidationError) as raised:
        await send_event(hass)

    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "camera_not_mapped"
    assert raised.value.translation_placeholders == {"entity_id": CAMERA}
    assert str(raised.value) == _exception_message("camera_not_mapped", entity_id=CAMERA)
    assert simulator.events == []


async def test_camera_of_an_unloaded_entry(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    entry = await setup_entry(hass, entry_data, camera_subentry())
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # The action stays registered without loaded entries, and says why it cannot send.
    assert hass.services.has_service(DOMAIN, SERVICE_SEND_EVENT)
    with pytest.raises(ServiceValidationError) as raised:
        await send_event(hass)

    assert raised.value.translation_key == "camera_not_mapped"
    assert simulator.events == []


async def test_camera_found_in_the_second_entry(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any], camera: FakeCamera
) -> None:
    other_data = {**entry_data, "client_id": "other-client"}
    simulator.add_client("other-client", secret=entry_data["signing_key"], audience=entry_data["audience"])
    await setup_entry(hass, other_data, camera_subentry(camera_entity_id="camera.other"))
    await setup_entry(hass, entry_data, camera_subentry())

    response = await send_event(hass)

    assert response["status"] == "accepted"
    assert simulator.events[0].client_id == "ha-test-client"


@pytest.mark.parametrize(
    "data",
    [
        {"event_type": "burglary"},
        {"event_status": "maybe"},
        {"snapshot_count": 11},
        {"snapshot_count": -1},
        {"payload": "not an object"},
        {"signal_monitoring_center": "perhaps"},
        {"camera_entity_id": "binary_sensor.front_motion"},
        {"camera_entity_id": None},
        {"unknown_field": 1},
    ],
)
async def test_schema_refuses(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
    camera: FakeCamera,
    data: dict[str, Any],
) -> None:
    await setup_entry(hass, entry_data, camera_subentry())

    with pytest.raises(vol.Invalid):
        await send_event(hass, **data)

    assert simulator.events == []


async def test_camera_is_required(hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]) -> None:
    await setup_entry(hass, entry_data)

    with pytest.raises(vol.Invalid):
        await hass.services.async_call(DOMAIN, SERVICE_SEND_EVENT, {}, blocking=True, return_response=True)


# --- the action's description and translations ---


async def test_home_assistant_reads_the_description(
    hass: HomeAssistant, simulator: ChektSimulator, entry_data: dict[str, Any]
) -> None:
    """services.yaml passes Home Assistant's own validation, and the action says its response is optional."""
    await setup_entry(hass, entry_data)

    description = (await async_get_all_descriptions(hass))[DOMAIN][SERVICE_SEND_EVENT]

    assert description["response"] == {"optional": True}
    assert set(description["fields"]) == {str(key) for key in SEND_EVENT_SCHEMA.schema}
    assert description["fields"]["camera_entity_id"]["required"] is True


def _strings() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))
    return data


def _exception_message(key: str, **placeholders: str) -> str:
    """The message as Home Assistant renders it (without the final full stop)."""
    message: str = _strings()["exceptions"][key]["message"]
    return message.format(**placeholders).rstrip(".")


def test_every_field_is_described_and_translated() -> None:
    services = yaml.safe_load((COMPONENT / "services.yaml").read_text(encoding="utf-8"))
    strings = _strings()
    for service, description in services.items():
        translated = strings["services"][service]
        assert translated["name"]
        assert translated["description"]
        assert set(translated["fields"]) == set(description["fields"])
        for field_name, field in description["fields"].items():
            assert translated["fields"][field_name]["name"], field_name
            assert translated["fields"][field_name]["description"], field_name
            select = field["selector"].get("select")
            if select is not None:
                options = strings["selector"][select["translation_key"]]["options"]
                assert set(options) == set(select["options"])


def test_services_yaml_matches_the_schema() -> None:
    """Every field of the schema is in services.yaml and the other way round, with the same choices."""
    fields = yaml.safe_load((COMPONENT / "services.yaml").read_text(encoding="utf-8"))["send_event"]["fields"]
    assert {str(key) for key in SEND_EVENT_SCHEMA.schema} == set(fields)
    assert fields["event_type"]["selector"]["select"]["options"] == [t.value for t in EventType]
    assert fields["event_status"]["selector"]["select"]["options"] == [s.value for s in EventStatus]
