"""The forwarding rules, without Home Assistant: which state changes become which CHeKT events."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.chekt import rules as rules_module
from custom_components.chekt.api import EventStatus, EventType
from custom_components.chekt.mapping import CameraMapping, Mappings, PanelMapping
from custom_components.chekt.outgoing import OutgoingEvent
from custom_components.chekt.rules import (
    ForwardingRules,
    RuleMemory,
    StateChange,
    is_arming_state,
    is_momentary,
    is_unavailable,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

FRONT = "camera.front"
BACK = "camera.back"
DOOR = "binary_sensor.door"
WINDOW = "binary_sensor.window"
MOTION = "binary_sensor.motion"  # watches both cameras
BELL = "event.doorbell"
PANEL = "alarm_control_panel.house"
UNMAPPED = "binary_sensor.garage"

CAM1 = CameraMapping(
    subentry_id="cam1",
    camera_entity_id=FRONT,
    location_id="LOC1",
    camera_id="CAMERA-FRONT",
    recorder_id="REC1",
    alarm_entity_ids=(DOOR, WINDOW, MOTION, BELL),
    signal_monitoring_center=True,
    snapshot_count=3,
    upload_short_mp4=True,
    upload_event_mp4=False,
    trouble_on_unavailable=True,
)
CAM2 = CameraMapping(
    subentry_id="cam2",
    camera_entity_id=BACK,
    location_id="LOC1",
    camera_id="CAMERA-BACK",
    recorder_id=None,
    alarm_entity_ids=(MOTION,),
    signal_monitoring_center=False,
    snapshot_count=1,
    upload_short_mp4=False,
    upload_event_mp4=True,
    trouble_on_unavailable=False,
)
PANEL1 = PanelMapping(
    subentry_id="panel1",
    panel_entity_id=PANEL,
    location_id="LOC1",
    camera_id="PANEL-ZONE",
    signal_monitoring_center=True,
)
MAPPINGS = Mappings(cameras=(CAM1, CAM2), panels=(PANEL1,))

DEFAULTS: dict[str, str | None] = {
    FRONT: "idle",
    BACK: "idle",
    DOOR: "off",
    WINDOW: "off",
    MOTION: "off",
    BELL: "2026-11-27T11:00:00.000+00:00",
    PANEL: "disarmed",
}

TIMEOUT = object()
"""A step's "new state" meaning: the entity's trouble delay ran out."""


class Sim:
    """The rules with every mapped entity in a state: `set` changes one, and returns the events, short."""

    def __init__(self, initial: dict[str, str | None] | None = None, mappings: Mappings = MAPPINGS) -> None:
        self.rules = ForwardingRules(mappings)
        self.states = DEFAULTS | (initial or {})
        self.clock = T0
        self.rules.seed(
            StateChange(entity_id=entity_id, old_state=None, new_state=state, changed_at=T0)
            for entity_id, state in self.states.items()
        )

    def change(self, entity_id: str, new: str | None, **extra: Any) -> list[OutgoingEvent]:
        self.clock += timedelta(seconds=1)
        if new is TIMEOUT:
            return self.rules.on_trouble_timeout(entity_id)
        change = StateChange(
            entity_id=entity_id,
            old_state=self.states.get(entity_id),
            new_state=new,
            changed_at=self.clock,
            **extra,
        )
        self.states[entity_id] = new
        return self.rules.on_change(change)


def short(events: list[OutgoingEvent]) -> list[str]:
    return [f"{e.source} {e.event_type} {e.event_status}" for e in events]


Step = tuple[str, Any, list[str]] | tuple[str, Any, list[str], dict[str, Any]]


def run(initial: dict[str, str | None], steps: list[Step]) -> Sim:
    sim = Sim(initial)
    for number, step in enumerate(steps):
        entity_id, new, expected = step[:3]
        extra: dict[str, Any] = step[3] if len(step) == 4 else {}  # type: ignore[misc]
        assert short(sim.change(entity_id, new, **extra)) == expected, f"step {number}: {entity_id} -> {new}"
    return sim


A_ON, A_OFF = "cam1 alarm active", "cam1 alarm inactive"
B_ON, B_OFF = "cam2 alarm active", "cam2 alarm inactive"
P_ON, P_OFF = "panel1 alarm active", "panel1 alarm inactive"
ARMED, DISARMED = "panel1 arming active", "panel1 arming inactive"
T_ON, T_OFF = "cam1 trouble active", "cam1 trouble inactive"
PT_ON, PT_OFF = "panel1 trouble active", "panel1 trouble inactive"

ALARM_CASES = [
    pytest.param({}, [(DOOR, "on", [A_ON]), (DOOR, "off", [A_OFF])], id="off-on-off"),
    pytest.param({}, [(DOOR, "off", [], {"friendly_name": "renamed"}), (DOOR, "on", [A_ON])], id="attrs-only"),
    pytest.param({}, [(DOOR, "on", [A_ON]), (DOOR, "on", [])], id="on-on-is-no-new-trigger"),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (WINDOW, "on", [A_ON]), (DOOR, "off", []), (WINDOW, "off", [A_OFF])],
        id="active-per-trigger-inactive-when-all-off",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (DOOR, "off", [A_OFF]), (DOOR, "on", [A_ON]), (DOOR, "off", [A_OFF])],
        id="a-second-alarm-after-the-first-closed",
    ),
    pytest.param({DOOR: "unknown"}, [(DOOR, "on", []), (DOOR, "off", [])], id="out-of-unknown"),
    pytest.param({DOOR: "unavailable"}, [(DOOR, "on", []), (DOOR, "off", [])], id="out-of-unavailable"),
    pytest.param({DOOR: None}, [(DOOR, "on", []), (DOOR, "off", [])], id="out-of-no-state"),
    pytest.param({}, [(DOOR, "on", [], {"restored": True}), (DOOR, "off", [])], id="restored-state"),
    pytest.param({DOOR: "on"}, [(DOOR, "off", []), (DOOR, "on", [A_ON])], id="on-at-start-is-baseline"),
    pytest.param(
        {DOOR: "on"},
        [(WINDOW, "on", [A_ON]), (WINDOW, "off", []), (DOOR, "off", [A_OFF])],
        id="sensor-on-at-start-holds-a-later-alarm-open",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (DOOR, "unavailable", []), (DOOR, "off", [A_OFF])],
        id="on-unavailable-off-closes-when-off",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (DOOR, "unavailable", []), (DOOR, "on", []), (DOOR, "off", [A_OFF])],
        id="on-unavailable-on-is-no-new-trigger",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (DOOR, "unknown", []), (DOOR, "off", [A_OFF])],
        id="on-unknown-off",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (DOOR, None, []), (DOOR, "off", [A_OFF])],
        id="on-removed-off",
    ),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (WINDOW, "on", [A_ON]), (WINDOW, "unavailable", []), (DOOR, "off", [])],
        id="sensor-offline-while-on-holds-the-alarm-open",
    ),
    pytest.param(
        {},
        [(WINDOW, "unavailable", []), (DOOR, "on", [A_ON]), (DOOR, "off", [A_OFF])],
        id="sensor-offline-while-off-holds-nothing",
    ),
    pytest.param(
        {WINDOW: "unavailable"},
        [(WINDOW, "on", []), (DOOR, "on", [A_ON]), (DOOR, "off", []), (WINDOW, "off", [A_OFF])],
        id="back-on-from-unavailable-holds-open",
    ),
    pytest.param({}, [(MOTION, "on", [A_ON, B_ON]), (MOTION, "off", [A_OFF, B_OFF])], id="one-sensor-two-cameras"),
    pytest.param(
        {},
        [
            (DOOR, "on", [A_ON]),
            (MOTION, "on", [A_ON, B_ON]),
            (MOTION, "off", [B_OFF]),
            (DOOR, "off", [A_OFF]),
        ],
        id="shared-sensor-closes-each-camera-on-its-own",
    ),
    pytest.param({}, [(UNMAPPED, "on", []), (UNMAPPED, "off", [])], id="unmapped-entity"),
]

EVENT_CASES = [
    pytest.param({}, [(BELL, "2026-11-27T12:00:01.000+00:00", [A_ON])], id="new-timestamp"),
    pytest.param(
        {},
        [(BELL, "2026-11-27T12:00:01.000+00:00", [A_ON]), (BELL, "2026-11-27T12:00:02.000+00:00", [A_ON])],
        id="every-event-no-inactive",
    ),
    pytest.param({BELL: "unknown"}, [(BELL, "2026-11-27T12:00:01.000+00:00", [])], id="out-of-unknown"),
    pytest.param({BELL: "unavailable"}, [(BELL, "2026-11-27T12:00:01.000+00:00", [])], id="out-of-unavailable"),
    pytest.param({BELL: None}, [(BELL, "2026-11-27T12:00:01.000+00:00", [])], id="out-of-no-state"),
    pytest.param({}, [(BELL, "2026-11-27T12:00:01.000+00:00", [], {"restored": True})], id="restored-timestamp"),
    pytest.param({}, [(BELL, "unavailable", []), (BELL, "unknown", [])], id="to-unavailable-or-unknown"),
    pytest.param({}, [(BELL, DEFAULTS[BELL], [], {"ha_event_type": "pressed"})], id="same-timestamp-attrs-only"),
    pytest.param(
        {},
        [(DOOR, "on", [A_ON]), (BELL, "2026-11-27T12:00:01.000+00:00", [A_ON]), (DOOR, "off", [A_OFF])],
        id="counts-as-off-for-closing",
    ),
]

PANEL_CASES = [
    pytest.param(
        {PANEL: "disarmed"},
        [(PANEL, "arming", []), (PANEL, "armed_away", [ARMED]), (PANEL, "disarmed", [DISARMED])],
        id="arm-disarm",
    ),
    pytest.param({PANEL: "disarmed"}, [(PANEL, "armed_home", [ARMED])], id="arm-directly"),
    pytest.param({PANEL: "armed_away"}, [(PANEL, "armed_night", [ARMED])], id="armed-to-armed"),
    pytest.param(
        {PANEL: "armed_away"},
        [
            (PANEL, "pending", []),
            (PANEL, "triggered", [P_ON]),
            (PANEL, "armed_away", [P_OFF]),
        ],
        id="manual-cycle-reports-no-second-arming",
    ),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "triggered", [P_ON]), (PANEL, "disarmed", [P_OFF, DISARMED])],
        id="disarmed-while-triggered",
    ),
    pytest.param({PANEL: "armed_away"}, [(PANEL, "disarming", []), (PANEL, "disarmed", [DISARMED])], id="disarming"),
    pytest.param({PANEL: "armed_home"}, [(PANEL, "armed_home", [], {"changed_by": "x"})], id="attrs-only"),
    pytest.param(
        {PANEL: "armed_home"},
        [(PANEL, "triggered", [P_ON]), (PANEL, "triggered", [], {"changed_by": "x"})],
        id="triggered-attrs-only",
    ),
    pytest.param({PANEL: "unavailable"}, [(PANEL, "armed_away", []), (PANEL, "disarmed", [DISARMED])], id="first-seen"),
    pytest.param({PANEL: None}, [(PANEL, "unknown", []), (PANEL, "disarmed", [])], id="first-seen-out-of-unknown"),
    pytest.param({PANEL: "arming"}, [(PANEL, "armed_away", [ARMED])], id="armed-while-starting"),
    pytest.param({PANEL: "triggered"}, [(PANEL, "disarmed", [DISARMED])], id="triggered-at-start"),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "unavailable", []), (PANEL, "disarmed", [DISARMED])],
        id="disarmed-while-unavailable",
    ),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "unavailable", []), (PANEL, "armed_away", [])],
        id="back-from-unavailable-unchanged",
    ),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "unavailable", []), (PANEL, "triggered", []), (PANEL, "disarmed", [DISARMED])],
        id="triggered-out-of-unavailable",
    ),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "triggered", [P_ON]), (PANEL, "unavailable", []), (PANEL, "armed_away", [P_OFF])],
        id="triggered-unavailable-armed",
    ),
    pytest.param(
        {PANEL: "armed_away"},
        [(PANEL, "disarmed", [], {"restored": True}), (PANEL, "armed_away", [ARMED])],
        id="restored-state-is-baseline",
    ),
    pytest.param({PANEL: "armed_away"}, [(PANEL, "triggered", [], {"restored": True})], id="restored-triggered"),
]

TROUBLE_CASES = [
    pytest.param({}, [(FRONT, "unavailable", []), (FRONT, TIMEOUT, [T_ON]), (FRONT, "idle", [T_OFF])], id="camera"),
    pytest.param({}, [(FRONT, "unavailable", []), (FRONT, "idle", []), (FRONT, TIMEOUT, [])], id="recovered-in-time"),
    pytest.param({}, [(FRONT, TIMEOUT, [])], id="timeout-while-available"),
    pytest.param({}, [(FRONT, "unavailable", []), (FRONT, TIMEOUT, [T_ON]), (FRONT, TIMEOUT, [])], id="reported-once"),
    pytest.param({FRONT: "unavailable"}, [(FRONT, TIMEOUT, [T_ON]), (FRONT, "idle", [T_OFF])], id="at-start"),
    pytest.param(
        {FRONT: None},
        [
            (FRONT, TIMEOUT, []),
            (FRONT, "unavailable", []),
            (FRONT, TIMEOUT, [T_ON]),
            (FRONT, "idle", [T_OFF]),
        ],
        id="missing-at-start-is-no-trouble",
    ),
    pytest.param({}, [(FRONT, None, []), (FRONT, TIMEOUT, [])], id="removed-is-no-trouble"),
    pytest.param(
        {},
        [(FRONT, "unavailable", []), (FRONT, None, []), (FRONT, TIMEOUT, [T_ON]), (FRONT, None, [])],
        id="removal-neither-starts-nor-ends-an-outage",
    ),
    pytest.param(
        {},
        [(FRONT, "unavailable", []), (FRONT, TIMEOUT, [T_ON]), (FRONT, "unknown", [T_OFF])],
        id="unknown-recovers",
    ),
    pytest.param(
        {},
        [(DOOR, "unavailable", []), (DOOR, TIMEOUT, [T_ON]), (DOOR, "off", [T_OFF])],
        id="alarm-entity",
    ),
    pytest.param(
        {},
        [
            (DOOR, "on", [A_ON]),
            (DOOR, "unavailable", []),
            (DOOR, TIMEOUT, [T_ON]),
            (DOOR, "off", [T_OFF, A_OFF]),
        ],
        id="alarm-entity-trouble-then-alarm-closes",
    ),
    pytest.param(
        {},
        [(MOTION, "unavailable", []), (MOTION, TIMEOUT, [T_ON]), (MOTION, "off", [T_OFF])],
        id="only-mappings-with-trouble-on-unavailable",
    ),
    pytest.param({}, [(BACK, "unavailable", []), (BACK, TIMEOUT, []), (BACK, "idle", [])], id="trouble-off"),
    pytest.param(
        {},
        [
            (FRONT, "unavailable", []),
            (DOOR, "unavailable", []),
            (FRONT, TIMEOUT, [T_ON]),
            (DOOR, TIMEOUT, [T_ON]),
            (FRONT, "idle", []),
            (DOOR, "off", [T_OFF]),
        ],
        id="inactive-when-the-last-recovers",
    ),
    pytest.param(
        {},
        [
            (FRONT, "unavailable", []),
            (DOOR, "unavailable", []),
            (FRONT, TIMEOUT, [T_ON]),
            (DOOR, "off", []),
            (FRONT, "idle", [T_OFF]),
        ],
        id="recovered-in-time-does-not-count",
    ),
    pytest.param(
        {}, [(PANEL, "unavailable", []), (PANEL, TIMEOUT, [PT_ON]), (PANEL, "disarmed", [PT_OFF])], id="panel"
    ),
    pytest.param({}, [(UNMAPPED, "unavailable", []), (UNMAPPED, TIMEOUT, [])], id="unmapped"),
]


@pytest.mark.parametrize(("initial", "steps"), ALARM_CASES)
def test_camera_alarms(initial: dict[str, str | None], steps: list[Step]) -> None:
    run(initial, steps)


@pytest.mark.parametrize(("initial", "steps"), EVENT_CASES)
def test_event_entities(initial: dict[str, str | None], steps: list[Step]) -> None:
    run(initial, steps)


@pytest.mark.parametrize(("initial", "steps"), PANEL_CASES)
def test_panels(initial: dict[str, str | None], steps: list[Step]) -> None:
    run(initial, steps)


@pytest.mark.parametrize(("initial", "steps"), TROUBLE_CASES)
def test_troubles(initial: dict[str, str | None], steps: list[Step]) -> None:
    run(initial, steps)


@pytest.mark.parametrize(
    "initial",
    [
        {},
        {DOOR: "on", MOTION: "on", PANEL: "triggered"},
        {FRONT: "unavailable", DOOR: None, WINDOW: "unavailable", BELL: "unknown", PANEL: "unavailable"},
        {PANEL: "armed_away", WINDOW: "unknown"},
    ],
)
def test_seeding_sends_nothing(initial: dict[str, str | None]) -> None:
    rules = ForwardingRules(MAPPINGS)
    states = DEFAULTS | initial
    sent = [
        rules.on_change(StateChange(entity_id=e, old_state=None, new_state=s, changed_at=T0)) for e, s in states.items()
    ]
    assert sent == [[] for _ in states]
    assert rules.memory.open_alarms == set()
    assert rules.memory.troubles == {}


def test_awaits_trouble() -> None:
    sim = Sim({FRONT: "unavailable", BACK: "unavailable", DOOR: "unavailable", WINDOW: None})
    awaited = {e for e in [*DEFAULTS, UNMAPPED] if sim.rules.awaits_trouble(e)}
    assert awaited == {FRONT, DOOR}  # BACK belongs to a camera without trouble_on_unavailable
    sim.change(FRONT, TIMEOUT)
    assert not sim.rules.awaits_trouble(FRONT)  # reported: no second timer
    assert sim.rules.trouble_entity_ids == {FRONT, DOOR, WINDOW, MOTION, BELL, PANEL}
    assert sim.rules.tracked_entity_ids == {FRONT, BACK, DOOR, WINDOW, MOTION, BELL, PANEL}


def test_untracked_changes_leave_memory_alone() -> None:
    sim = Sim()
    before = replace(sim.rules.memory, last_known=dict(sim.rules.memory.last_known))
    sim.change(UNMAPPED, "unavailable")
    sim.change(UNMAPPED, "on")
    assert sim.rules.memory == before


def test_memory_can_be_passed_in() -> None:
    memory = RuleMemory(last_known={DOOR: "on"}, open_alarms={"cam1"})
    rules = ForwardingRules(MAPPINGS, memory)
    assert rules.memory is memory
    change = StateChange(entity_id=DOOR, old_state="on", new_state="off", changed_at=T0)
    assert short(rules.on_change(change)) == [A_OFF]
    assert memory.open_alarms == set()


# The events themselves: ids, media, time and payload.


def test_alarm_active_carries_the_cameras_media_and_ids() -> None:
    sim = Sim()
    change_time = T0 + timedelta(seconds=1)
    [event] = sim.change(DOOR, "on", friendly_name="Front door", device_class="door")
    assert event == OutgoingEvent(
        source="cam1",
        event_type=EventType.ALARM,
        event_status=EventStatus.ACTIVE,
        event_time=change_time,
        location_id="LOC1",
        camera_id="CAMERA-FRONT",
        recorder_id="REC1",
        signal_monitoring_center=True,
        snapshot_count=3,
        upload_short_mp4=True,
        upload_event_mp4=False,
        camera_entity_id=FRONT,
        payload={"entity_id": DOOR, "friendly_name": "Front door", "device_class": "door", "state": "on"},
    )


def test_alarm_inactive_carries_no_media() -> None:
    sim = Sim()
    sim.change(DOOR, "on")
    [event] = sim.change(DOOR, "off", friendly_name="Front door")
    assert event == OutgoingEvent(
        source="cam1",
        event_type=EventType.ALARM,
        event_status=EventStatus.INACTIVE,
        event_time=T0 + timedelta(seconds=2),
        location_id="LOC1",
        camera_id="CAMERA-FRONT",
        recorder_id="REC1",
        signal_monitoring_center=True,
        camera_entity_id=FRONT,
        payload={"entity_id": DOOR, "friendly_name": "Front door", "state": "off"},
    )


def test_one_sensor_two_cameras_each_with_its_own_settings() -> None:
    sim = Sim()
    first, second = sim.change(MOTION, "on", device_class="motion")
    assert (first.source, first.snapshot_count, first.upload_short_mp4, first.upload_event_mp4) == (
        "cam1",
        3,
        True,
        False,
    )
    assert (second.source, second.camera_id, second.recorder_id, second.camera_entity_id) == (
        "cam2",
        "CAMERA-BACK",
        None,
        BACK,
    )
    assert (second.snapshot_count, second.upload_short_mp4, second.upload_event_mp4) == (1, False, True)
    assert second.signal_monitoring_center is False
    assert first.payload == second.payload == {"entity_id": MOTION, "device_class": "motion", "state": "on"}


def test_event_entity_payload_names_the_event() -> None:
    sim = Sim()
    [event] = sim.change(BELL, "2026-11-27T12:00:01.000+00:00", device_class="doorbell", ha_event_type="ring")
    assert event.payload == {
        "entity_id": BELL,
        "device_class": "doorbell",
        "state": "2026-11-27T12:00:01.000+00:00",
        "ha_event_type": "ring",
    }
    assert event.snapshot_count == 3


def test_arming_event() -> None:
    sim = Sim({PANEL: "disarmed"})
    [event] = sim.change(PANEL, "armed_night", friendly_name="House", changed_by="Keypad 1", user_name="Ada")
    assert event == OutgoingEvent(
        source="panel1",
        event_type=EventType.ARMING,
        event_status=EventStatus.ACTIVE,
        event_time=T0 + timedelta(seconds=1),
        location_id="LOC1",
        camera_id="PANEL-ZONE",
        recorder_id=None,
        signal_monitoring_center=True,
        payload={
            "entity_id": PANEL,
            "friendly_name": "House",
            "arming_state": "armed_night",
            "changed_by": "Keypad 1",
            "user": "Ada",
        },
    )
    [event] = sim.change(PANEL, "disarmed")
    assert event.event_status is EventStatus.INACTIVE
    assert event.payload == {"entity_id": PANEL, "arming_state": "disarmed"}


def test_panel_alarm_event() -> None:
    sim = Sim({PANEL: "armed_away"})
    sim.change(PANEL, "pending")
    [event] = sim.change(PANEL, "triggered", friendly_name="House")
    assert event == OutgoingEvent(
        source="panel1",
        event_type=EventType.ALARM,
        event_status=EventStatus.ACTIVE,
        event_time=T0 + timedelta(seconds=2),
        location_id="LOC1",
        camera_id="PANEL-ZONE",
        recorder_id=None,
        signal_monitoring_center=True,
        payload={"entity_id": PANEL, "friendly_name": "House", "state": "triggered"},
    )
    alarm_end, disarm = sim.change(PANEL, "disarmed", user_name="Ada")
    assert (alarm_end.event_type, alarm_end.event_status) == (EventType.ALARM, EventStatus.INACTIVE)
    assert alarm_end.payload == {"entity_id": PANEL, "state": "disarmed", "user": "Ada"}
    assert (disarm.event_type, disarm.event_status) == (EventType.ARMING, EventStatus.INACTIVE)
    assert alarm_end.event_time == disarm.event_time == T0 + timedelta(seconds=3)


def test_trouble_events_are_dated_when_the_entity_went_unavailable() -> None:
    sim = Sim()
    sim.change(FRONT, "unavailable", friendly_name="Front camera")
    went = sim.clock
    sim.change(FRONT, None)  # removed while unavailable: still the same outage
    [active] = sim.change(FRONT, TIMEOUT)
    assert active == OutgoingEvent(
        source="cam1",
        event_type=EventType.TROUBLE,
        event_status=EventStatus.ACTIVE,
        event_time=went,
        location_id="LOC1",
        camera_id="CAMERA-FRONT",
        recorder_id="REC1",
        signal_monitoring_center=True,
        camera_entity_id=FRONT,
        payload={"entity_id": FRONT, "friendly_name": "Front camera", "state": "unavailable"},
    )
    [inactive] = sim.change(FRONT, "idle", friendly_name="Front camera")
    assert inactive.event_status is EventStatus.INACTIVE
    assert inactive.event_time == sim.clock
    assert (inactive.snapshot_count, inactive.upload_short_mp4, inactive.upload_event_mp4) == (
        0,
        False,
        False,
    )
    assert inactive.payload == {"entity_id": FRONT, "friendly_name": "Front camera", "state": "idle"}


def test_panel_trouble_uses_the_panels_ids() -> None:
    sim = Sim()
    sim.change(PANEL, "unavailable")
    [event] = sim.change(PANEL, TIMEOUT)
    assert (event.source, event.camera_id, event.recorder_id, event.camera_entity_id) == (
        "panel1",
        "PANEL-ZONE",
        None,
        None,
    )


@pytest.mark.parametrize(("initial", "steps"), [*ALARM_CASES, *EVENT_CASES, *PANEL_CASES, *TROUBLE_CASES])
def test_every_event_is_json_serialisable_and_has_an_aware_time(
    initial: dict[str, str | None], steps: list[Step]
) -> None:
    sim = Sim(initial)
    extra = {"friendly_name": "Name", "device_class": "door", "changed_by": "Keypad", "user_name": "Ada"}
    for entity_id, new, *_ in steps:
        for event in sim.change(entity_id, new, **({} if new is TIMEOUT else extra)):
            json.dumps(event.payload)
            assert all(isinstance(value, str) for value in event.payload.values())
            assert event.event_time.tzinfo is not None
            event.to_chekt_event("1").to_request_body(T0)
            if (event.event_type, event.event_status) != (EventType.ALARM, EventStatus.ACTIVE) or (
                event.source == "panel1"
            ):
                assert (event.snapshot_count, event.upload_short_mp4, event.upload_event_mp4) == (
                    0,
                    False,
                    False,
                )


def test_helpers() -> None:
    assert is_unavailable("unavailable")
    assert not is_unavailable(None)
    assert not is_unavailable("unknown")
    assert is_arming_state("disarmed")
    assert is_arming_state("armed_custom_bypass")
    assert not is_arming_state("arming")
    assert not is_arming_state(None)
    assert is_momentary("event.doorbell")
    assert not is_momentary("binary_sensor.event")
    change = StateChange(entity_id=DOOR, old_state="off", new_state="on", changed_at=T0)
    assert change.is_real
    assert not replace(change, restored=True).is_real
    assert not replace(change, old_state="unknown").is_real


def test_rules_module_imports_no_home_assistant() -> None:
    tree = ast.parse(Path(rules_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {"." * node.level + (node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "typing",
        ".api",
        ".mapping",
        ".outgoing",
    }


def test_a_trouble_already_reported_to_one_camera_goes_to_the_other_only() -> None:
    third = replace(CAM2, subentry_id="cam3", camera_entity_id="camera.third", trouble_on_unavailable=True)
    memory = RuleMemory(troubles={"cam1": {MOTION}})
    rules = ForwardingRules(Mappings(cameras=(CAM1, third)), memory)
    rules.on_change(StateChange(entity_id=MOTION, old_state="off", new_state="unavailable", changed_at=T0))
    assert rules.awaits_trouble(MOTION)
    assert short(rules.on_trouble_timeout(MOTION)) == ["cam3 trouble active"]
    assert not rules.awaits_trouble(MOTION)
    change = StateChange(entity_id=MOTION, old_state="unavailable", new_state="off", changed_at=T0)
    assert short(rules.on_change(change)) == [T_OFF, "cam3 trouble inactive"]
