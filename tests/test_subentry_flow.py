"""The camera and alarm panel subentry flows: adding, reconfiguring and what they refuse."""

from __future__ import annotations

from typing import Any

from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.const import ATTR_FRIENDLY_NAME, ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.chekt.config_flow import _clip_problem
from custom_components.chekt.const import (
    CONF_ALARM_ENTITY_IDS,
    CONF_API_URL,
    CONF_CAMERA_ENTITY_ID,
    CONF_CAMERA_ID,
    CONF_CLIENT_ID,
    CONF_LOCATION_ID,
    CONF_PANEL_ENTITY_ID,
    CONF_RECORDER_ID,
    CONF_SIGNAL_MONITORING_CENTER,
    CONF_SIGNING_KEY,
    CONF_SNAPSHOT_COUNT,
    CONF_TOKEN_URL,
    CONF_TROUBLE_ON_UNAVAILABLE,
    CONF_UPLOAD_EVENT_MP4,
    CONF_UPLOAD_SHORT_MP4,
    DOMAIN,
    PRODUCTION_API_URL,
    SUBENTRY_ALARM_PANEL,
    SUBENTRY_CAMERA,
)

GARAGE_DATA: dict[str, Any] = {
    CONF_CAMERA_ENTITY_ID: "camera.garage",
    CONF_LOCATION_ID: "LOC-1",
    CONF_CAMERA_ID: "CAM-GARAGE",
    CONF_ALARM_ENTITY_IDS: ["binary_sensor.garage_door"],
    CONF_SIGNAL_MONITORING_CENTER: True,
    CONF_SNAPSHOT_COUNT: 1,
    CONF_UPLOAD_SHORT_MP4: False,
    CONF_UPLOAD_EVENT_MP4: False,
    CONF_TROUBLE_ON_UNAVAILABLE: True,
}
HOUSE_DATA: dict[str, Any] = {
    CONF_PANEL_ENTITY_ID: "alarm_control_panel.house",
    CONF_LOCATION_ID: "LOC-1",
    CONF_CAMERA_ID: "CAM-PANEL",
    CONF_SIGNAL_MONITORING_CENTER: True,
}
STREAMING = int(CameraEntityFeature.ON_OFF | CameraEntityFeature.STREAM)


@pytest.fixture
def entry(hass: HomeAssistant) -> MockConfigEntry:
    """A CHeKT entry (never set up: the subentry flows do not need it) with one camera and one panel."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        title="CHeKT (client)",
        unique_id="client@https://auth.example.com/oauth/token",
        data={
            CONF_API_URL: PRODUCTION_API_URL,
            CONF_TOKEN_URL: "https://auth.example.com/oauth/token",
            CONF_CLIENT_ID: "client",
            CONF_SIGNING_KEY: "secret",
        },
        subentries_data=[
            ConfigSubentryData(
                data=GARAGE_DATA, subentry_type=SUBENTRY_CAMERA, title="Garage (CAM-GARAGE)", unique_id=None
            ),
            ConfigSubentryData(
                data=HOUSE_DATA, subentry_type=SUBENTRY_ALARM_PANEL, title="House (CAM-PANEL)", unique_id=None
            ),
        ],
    )
    config_entry.add_to_hass(hass)
    return config_entry


@pytest.fixture(autouse=True)
def entity_states(hass: HomeAssistant) -> None:
    """Cameras (one streams, one does not) and a panel; the mapping flows only read their states."""
    hass.states.async_set(
        "camera.front", "idle", {ATTR_FRIENDLY_NAME: "Front door", ATTR_SUPPORTED_FEATURES: STREAMING}
    )
    hass.states.async_set("camera.garage", "idle", {ATTR_FRIENDLY_NAME: "Garage", ATTR_SUPPORTED_FEATURES: 0})
    hass.states.async_set("camera.still", "idle", {ATTR_FRIENDLY_NAME: "Snapshot only", ATTR_SUPPORTED_FEATURES: 0})
    hass.states.async_set("alarm_control_panel.house", "disarmed", {ATTR_FRIENDLY_NAME: "House"})
    hass.states.async_set("alarm_control_panel.shed", "disarmed", {ATTR_FRIENDLY_NAME: "Shed"})


def subentry_id_of(entry: MockConfigEntry, subentry_type: str, key: str, entity_id: str) -> str:
    """The id of the subentry that maps `entity_id`."""
    return next(
        subentry.subentry_id
        for subentry in entry.get_subentries_of_type(subentry_type)
        if subentry.data[key] == entity_id
    )


async def start(hass: HomeAssistant, entry: MockConfigEntry, subentry_type: str) -> FlowResult[Any, Any]:
    """The form of a new mapping."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, subentry_type), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert not result["errors"]
    return result


async def configure(hass: HomeAssistant, result: FlowResult[Any, Any], user_input: dict[str, Any]) -> Any:
    """Submit a subentry form."""
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


def suggested(result: FlowResult[Any, Any], key: str) -> Any:
    """The value a form shows pre-filled for `key`, or None."""
    for marker in result["data_schema"].schema:
        if marker == key:
            return (marker.description or {}).get("suggested_value")
    raise KeyError(key)


def camera_input(**overrides: Any) -> dict[str, Any]:
    """A full camera form for camera.front."""
    return {
        CONF_CAMERA_ENTITY_ID: "camera.front",
        CONF_LOCATION_ID: " LOC-1 ",
        CONF_CAMERA_ID: "\tCAM-FRONT ",
        CONF_RECORDER_ID: " REC-1 ",
        CONF_ALARM_ENTITY_IDS: ["binary_sensor.front_motion", "event.doorbell", "binary_sensor.front_motion"],
        CONF_SIGNAL_MONITORING_CENTER: False,
        CONF_SNAPSHOT_COUNT: 3.0,
        CONF_UPLOAD_SHORT_MP4: True,
        CONF_UPLOAD_EVENT_MP4: True,
        CONF_TROUBLE_ON_UNAVAILABLE: False,
    } | overrides


def minimal_camera_input(**overrides: Any) -> dict[str, Any]:
    """Only the required camera fields."""
    return {
        CONF_CAMERA_ENTITY_ID: "camera.still",
        CONF_LOCATION_ID: "LOC-2",
        CONF_CAMERA_ID: "CAM-STILL",
    } | overrides


# --- camera ---


async def test_add_camera(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Every field is stored, trimmed and typed; the title is the camera's name and CHeKT id."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    result = await configure(hass, result, camera_input())

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Front door (CAM-FRONT)"
    subentry_id = subentry_id_of(entry, SUBENTRY_CAMERA, CONF_CAMERA_ENTITY_ID, "camera.front")
    subentry = entry.subentries[subentry_id]
    assert subentry.title == "Front door (CAM-FRONT)"
    assert dict(subentry.data) == {
        CONF_CAMERA_ENTITY_ID: "camera.front",
        CONF_LOCATION_ID: "LOC-1",
        CONF_CAMERA_ID: "CAM-FRONT",
        CONF_RECORDER_ID: "REC-1",
        CONF_ALARM_ENTITY_IDS: ["binary_sensor.front_motion", "event.doorbell"],
        CONF_SIGNAL_MONITORING_CENTER: False,
        CONF_SNAPSHOT_COUNT: 3,
        CONF_UPLOAD_SHORT_MP4: True,
        CONF_UPLOAD_EVENT_MP4: True,
        CONF_TROUBLE_ON_UNAVAILABLE: False,
    }
    assert isinstance(subentry.data[CONF_SNAPSHOT_COUNT], int)


async def test_add_camera_defaults(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Left alone, the optional fields take the documented defaults and no recorder id is stored."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    result = await configure(hass, result, minimal_camera_input(**{CONF_RECORDER_ID: "  "}))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Snapshot only (CAM-STILL)"
    assert result["data"] == {
        CONF_CAMERA_ENTITY_ID: "camera.still",
        CONF_LOCATION_ID: "LOC-2",
        CONF_CAMERA_ID: "CAM-STILL",
        CONF_ALARM_ENTITY_IDS: [],
        CONF_SIGNAL_MONITORING_CENTER: True,
        CONF_SNAPSHOT_COUNT: 1,
        CONF_UPLOAD_SHORT_MP4: False,
        CONF_UPLOAD_EVENT_MP4: False,
        CONF_TROUBLE_ON_UNAVAILABLE: True,
    }


async def test_add_camera_without_state_titled_by_entity_id(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """A camera with no state yet (or no friendly name) is titled by its entity id."""
    hass.states.async_set("camera.nameless", "idle", {})
    result = await start(hass, entry, SUBENTRY_CAMERA)
    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: "camera.absent"}))
    assert result["title"] == "camera.absent (CAM-STILL)"

    result = await start(hass, entry, SUBENTRY_CAMERA)
    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: "camera.nameless"}))
    assert result["title"] == "camera.nameless (CAM-STILL)"


async def test_add_camera_already_mapped(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """A camera is mapped once per entry; choosing another one succeeds."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: "camera.garage"}))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CAMERA_ENTITY_ID: "already_mapped"}
    assert suggested(result, CONF_CAMERA_ENTITY_ID) == "camera.garage"
    assert suggested(result, CONF_CAMERA_ID) == "CAM-STILL"

    result = await configure(hass, result, minimal_camera_input())

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(entry.get_subentries_of_type(SUBENTRY_CAMERA)) == 2


async def test_add_camera_empty_ids(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Blank location and camera ids are refused on their fields."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    result = await configure(hass, result, camera_input(**{CONF_LOCATION_ID: "  ", CONF_CAMERA_ID: ""}))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_LOCATION_ID: "empty_id", CONF_CAMERA_ID: "empty_id"}

    result = await configure(hass, result, camera_input())

    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("camera", "clip_option"),
    [
        ("camera.still", CONF_UPLOAD_SHORT_MP4),
        ("camera.still", CONF_UPLOAD_EVENT_MP4),
        ("camera.absent", CONF_UPLOAD_EVENT_MP4),
    ],
)
async def test_add_camera_clips_need_a_stream(
    hass: HomeAssistant, entry: MockConfigEntry, camera: str, clip_option: str
) -> None:
    """A clip option on a camera that cannot stream is refused; without clips the camera is fine."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: camera, clip_option: True}))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "stream_not_supported"}

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: camera}))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][clip_option] is False


def test_clip_problem(hass: HomeAssistant) -> None:
    """The hook answers None when no clip is asked for, or when the camera streams."""
    no_clips = {
        CONF_CAMERA_ENTITY_ID: "camera.still",
        CONF_UPLOAD_SHORT_MP4: False,
        CONF_UPLOAD_EVENT_MP4: False,
    }
    assert _clip_problem(hass, no_clips) is None
    assert _clip_problem(hass, no_clips | {CONF_CAMERA_ENTITY_ID: "camera.front", CONF_UPLOAD_SHORT_MP4: True}) is None
    assert _clip_problem(hass, no_clips | {CONF_UPLOAD_SHORT_MP4: True}) == "stream_not_supported"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_CAMERA_ENTITY_ID, "light.kitchen"),
        (CONF_ALARM_ENTITY_IDS, ["sensor.temperature"]),
        (CONF_SNAPSHOT_COUNT, 11),
        (CONF_SNAPSHOT_COUNT, -1),
    ],
)
async def test_add_camera_schema_refuses(hass: HomeAssistant, entry: MockConfigEntry, field: str, value: Any) -> None:
    """Entities of other domains and snapshot counts outside 0..10 never reach the flow."""
    result = await start(hass, entry, SUBENTRY_CAMERA)

    with pytest.raises(InvalidData):
        await configure(hass, result, camera_input(**{field: value}))


async def test_reconfigure_camera(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """The form shows the stored mapping; the camera keeps its own entity, and everything can change."""
    hass.states.async_set("camera.garage", "idle", {ATTR_FRIENDLY_NAME: "Garage", ATTR_SUPPORTED_FEATURES: STREAMING})
    subentry_id = subentry_id_of(entry, SUBENTRY_CAMERA, CONF_CAMERA_ENTITY_ID, "camera.garage")

    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    for key, value in GARAGE_DATA.items():
        assert suggested(result, key) == value

    result = await configure(
        hass,
        result,
        GARAGE_DATA
        | {
            CONF_CAMERA_ID: " CAM-G2 ",
            CONF_RECORDER_ID: "REC-9",
            CONF_SNAPSHOT_COUNT: 0,
            CONF_UPLOAD_EVENT_MP4: True,
        },
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = entry.subentries[subentry_id]
    assert subentry.title == "Garage (CAM-G2)"
    assert dict(subentry.data) == GARAGE_DATA | {
        CONF_CAMERA_ID: "CAM-G2",
        CONF_RECORDER_ID: "REC-9",
        CONF_SNAPSHOT_COUNT: 0,
        CONF_UPLOAD_EVENT_MP4: True,
    }


async def test_reconfigure_camera_errors_and_recovery(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Another mapped camera, empty ids and clips without a stream are refused, with the input kept."""
    result = await start(hass, entry, SUBENTRY_CAMERA)
    await configure(hass, result, minimal_camera_input())
    subentry_id = subentry_id_of(entry, SUBENTRY_CAMERA, CONF_CAMERA_ENTITY_ID, "camera.still")
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: "camera.garage"}))

    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {CONF_CAMERA_ENTITY_ID: "already_mapped"}
    assert suggested(result, CONF_CAMERA_ENTITY_ID) == "camera.garage"

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ID: " ", CONF_UPLOAD_SHORT_MP4: True}))

    assert result["errors"] == {CONF_CAMERA_ID: "empty_id", "base": "stream_not_supported"}

    result = await configure(hass, result, minimal_camera_input(**{CONF_CAMERA_ENTITY_ID: "camera.front"}))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].data[CONF_CAMERA_ENTITY_ID] == "camera.front"
    assert entry.subentries[subentry_id].title == "Front door (CAM-STILL)"


# --- alarm panel ---


async def test_add_alarm_panel(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """A panel is stored trimmed, titled by its name and CHeKT camera id."""
    result = await start(hass, entry, SUBENTRY_ALARM_PANEL)

    result = await configure(
        hass,
        result,
        {
            CONF_PANEL_ENTITY_ID: "alarm_control_panel.shed",
            CONF_LOCATION_ID: " LOC-2 ",
            CONF_CAMERA_ID: " CAM-SHED ",
            CONF_SIGNAL_MONITORING_CENTER: False,
        },
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Shed (CAM-SHED)"
    subentry_id = subentry_id_of(entry, SUBENTRY_ALARM_PANEL, CONF_PANEL_ENTITY_ID, "alarm_control_panel.shed")
    assert dict(entry.subentries[subentry_id].data) == {
        CONF_PANEL_ENTITY_ID: "alarm_control_panel.shed",
        CONF_LOCATION_ID: "LOC-2",
        CONF_CAMERA_ID: "CAM-SHED",
        CONF_SIGNAL_MONITORING_CENTER: False,
    }


async def test_add_alarm_panel_refusals(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """A panel mapped twice and empty ids are refused; the default signals the monitoring center."""
    result = await start(hass, entry, SUBENTRY_ALARM_PANEL)

    result = await configure(
        hass,
        result,
        {CONF_PANEL_ENTITY_ID: "alarm_control_panel.house", CONF_LOCATION_ID: "", CONF_CAMERA_ID: "CAM-1"},
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PANEL_ENTITY_ID: "already_mapped", CONF_LOCATION_ID: "empty_id"}

    result = await configure(
        hass,
        result,
        {
            CONF_PANEL_ENTITY_ID: "alarm_control_panel.shed",
            CONF_LOCATION_ID: "LOC-1",
            CONF_CAMERA_ID: "CAM-1",
        },
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SIGNAL_MONITORING_CENTER] is True
    result = await start(hass, entry, SUBENTRY_ALARM_PANEL)
    with pytest.raises(InvalidData):
        await configure(
            hass, result, {CONF_PANEL_ENTITY_ID: "camera.front", CONF_LOCATION_ID: "L", CONF_CAMERA_ID: "C"}
        )


async def test_reconfigure_alarm_panel(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """The panel keeps its own entity; another mapped panel is refused; the change is stored."""
    await configure(
        hass,
        await start(hass, entry, SUBENTRY_ALARM_PANEL),
        {
            CONF_PANEL_ENTITY_ID: "alarm_control_panel.shed",
            CONF_LOCATION_ID: "LOC-2",
            CONF_CAMERA_ID: "CAM-SHED",
        },
    )
    subentry_id = subentry_id_of(entry, SUBENTRY_ALARM_PANEL, CONF_PANEL_ENTITY_ID, "alarm_control_panel.house")

    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)

    assert result["step_id"] == "reconfigure"
    for key, value in HOUSE_DATA.items():
        assert suggested(result, key) == value

    result = await configure(hass, result, HOUSE_DATA | {CONF_PANEL_ENTITY_ID: "alarm_control_panel.shed"})

    assert result["errors"] == {CONF_PANEL_ENTITY_ID: "already_mapped"}

    result = await configure(hass, result, HOUSE_DATA | {CONF_CAMERA_ID: "CAM-9", CONF_SIGNAL_MONITORING_CENTER: False})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].title == "House (CAM-9)"
    assert dict(entry.subentries[subentry_id].data) == HOUSE_DATA | {
        CONF_CAMERA_ID: "CAM-9",
        CONF_SIGNAL_MONITORING_CENTER: False,
    }


async def test_subentry_changes_notify_the_update_listener(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Adding and reconfiguring a mapping fire the entry's update listener (which reloads the entry)."""
    calls: list[str] = []

    async def listener(hass: HomeAssistant, updated: Any) -> None:
        calls.append(updated.entry_id)

    entry.add_update_listener(listener)
    result = await start(hass, entry, SUBENTRY_CAMERA)
    await configure(hass, result, minimal_camera_input())
    subentry_id = subentry_id_of(entry, SUBENTRY_CAMERA, CONF_CAMERA_ENTITY_ID, "camera.still")
    result = await entry.start_subentry_reconfigure_flow(hass, subentry_id)
    await configure(hass, result, minimal_camera_input(**{CONF_SNAPSHOT_COUNT: 2}))
    await hass.async_block_till_done()

    assert calls == [entry.entry_id, entry.entry_id]
