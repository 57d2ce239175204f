"""The forwarder in a real Home Assistant: state changes of mapped entities in, submitted events out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
import logging
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import Context, CoreState, HassJob, HomeAssistant
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.chekt.api import EventStatus, EventType
from custom_components.chekt.forwarder import Forwarder
from custom_components.chekt.mapping import CameraMapping, Mappings, PanelMapping
from custom_components.chekt.outgoing import OutgoingEvent

FRONT = "camera.front"
DOOR = "binary_sensor.door"
WINDOW = "binary_sensor.window"
BELL = "event.doorbell"
PANEL = "alarm_control_panel.house"
UNMAPPED = "binary_sensor.garage"
DELAY = 30

CAMERA = CameraMapping(
    subentry_id="cam1",
    camera_entity_id=FRONT,
    location_id="LOC1",
    camera_id="CAMERA-FRONT",
    recorder_id="REC1",
    alarm_entity_ids=(DOOR, WINDOW, BELL),
    signal_monitoring_center=True,
    snapshot_count=2,
    upload_short_mp4=False,
    upload_event_mp4=True,
    trouble_on_unavailable=True,
)
PANEL_MAPPING = PanelMapping(
    subentry_id="panel1",
    panel_entity_id=PANEL,
    location_id="LOC1",
    camera_id="PANEL-ZONE",
    signal_monitoring_center=False,
)
MAPPINGS = Mappings(cameras=(CAMERA,), panels=(PANEL_MAPPING,))

DOOR_ATTRS = {"friendly_name": "Front door", "device_class": "door"}


def short(events: list[OutgoingEvent]) -> list[str]:
    return [f"{e.source} {e.event_type} {e.event_status}" for e in events]


def chekt_timers(hass: HomeAssistant) -> list[str]:
    """The names of the forwarder's timers still scheduled on the loop."""
    return [
        job.name
        for handle in get_scheduled_timer_handles(hass.loop)
        if not handle.cancelled()
        and handle._args
        and isinstance(job := handle._args[-1], HassJob)
        and (job.name or "").startswith("chekt")
    ]


@pytest.fixture
def sent() -> list[OutgoingEvent]:
    return []


@pytest.fixture
def make_forwarder(hass: HomeAssistant, sent: list[OutgoingEvent]) -> Iterator[Callable[..., Forwarder]]:
    """Forwarders submitting into `sent`, not started; every one is stopped after the test."""
    made: list[Forwarder] = []

    def make(mappings: Mappings = MAPPINGS, **kwargs: Any) -> Forwarder:
        forwarder = Forwarder(hass, mappings, trouble_delay=DELAY, submit=sent.append, **kwargs)
        made.append(forwarder)
        return forwarder

    yield make
    for forwarder in made:
        forwarder.async_stop()


@pytest.fixture
def start(make_forwarder: Callable[..., Forwarder]) -> Callable[[], Forwarder]:
    def start() -> Forwarder:
        forwarder = make_forwarder()
        forwarder.async_start()
        return forwarder

    return start


def later(seconds: float) -> Any:
    return dt_util.utcnow() + timedelta(seconds=seconds)


def set_defaults(hass: HomeAssistant, overrides: dict[str, str] | None = None) -> None:
    """Every mapped entity in a quiet state, but for `overrides`."""
    states = {
        FRONT: "idle",
        DOOR: "off",
        WINDOW: "off",
        BELL: "2026-11-27T11:00:00.000+00:00",
        PANEL: "disarmed",
    }
    for entity_id, state in (states | (overrides or {})).items():
        hass.states.async_set(entity_id, state)


async def test_nothing_at_start_up(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    hass.states.async_set(DOOR, "on", DOOR_ATTRS)
    hass.states.async_set(PANEL, "armed_away")
    hass.states.async_set(FRONT, "idle")
    hass.states.async_set(BELL, "2026-11-27T11:00:00.000+00:00")
    start()
    await hass.async_block_till_done()
    assert sent == []

    hass.states.async_set(DOOR, "off", DOOR_ATTRS)  # no inactive without an active
    hass.states.async_set(PANEL, "armed_away", {"changed_by": "Keypad"})  # the baseline, attributes only
    assert sent == []
    hass.states.async_set(DOOR, "on", DOOR_ATTRS)
    assert short(sent) == ["cam1 alarm active"]


async def test_nothing_out_of_unknown_or_unavailable_or_restored(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass, {DOOR: "unknown", WINDOW: "unavailable"})
    hass.states.async_remove(BELL)
    start()
    hass.states.async_set(DOOR, "on")
    hass.states.async_set(WINDOW, "on")
    hass.states.async_set(BELL, "2026-11-27T12:00:00.000+00:00")
    hass.states.async_set(DOOR, "off")
    hass.states.async_set(WINDOW, "off")
    hass.states.async_set(DOOR, "on", {"restored": True})
    await hass.async_block_till_done()
    assert sent == []


async def test_alarm_active_then_inactive_when_every_alarm_entity_is_off(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    start()
    hass.states.async_set(DOOR, "on", DOOR_ATTRS)
    door_on = hass.states.get(DOOR)
    assert door_on is not None
    hass.states.async_set(WINDOW, "on")
    hass.states.async_set(DOOR, "off", DOOR_ATTRS)
    assert short(sent) == ["cam1 alarm active", "cam1 alarm active"]
    hass.states.async_set(WINDOW, "off", {"friendly_name": "Window"})
    assert short(sent) == ["cam1 alarm active", "cam1 alarm active", "cam1 alarm inactive"]

    active, _, inactive = sent
    assert active.event_time == door_on.last_changed
    assert active.payload == {
        "entity_id": DOOR,
        "friendly_name": "Front door",
        "device_class": "door",
        "state": "on",
    }
    assert (active.snapshot_count, active.upload_short_mp4, active.upload_event_mp4) == (2, False, True)
    assert (active.camera_entity_id, active.recorder_id, active.camera_id) == (FRONT, "REC1", "CAMERA-FRONT")
    assert inactive.payload == {"entity_id": WINDOW, "friendly_name": "Window", "state": "off"}
    assert (inactive.snapshot_count, inactive.upload_short_mp4, inactive.upload_event_mp4) == (
        0,
        False,
        False,
    )


async def test_event_entity_raises_an_alarm_per_event(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    start()
    attrs = {"event_type": "ring", "device_class": "doorbell", "event_types": ["ring"]}
    hass.states.async_set(BELL, "2026-11-27T12:00:00.000+00:00", attrs)
    hass.states.async_set(BELL, "2026-11-27T12:00:05.000+00:00", attrs)
    assert short(sent) == ["cam1 alarm active", "cam1 alarm active"]
    assert sent[0].payload == {
        "entity_id": BELL,
        "device_class": "doorbell",
        "state": "2026-11-27T12:00:00.000+00:00",
        "ha_event_type": "ring",
    }


async def test_removed_and_re_added_off_closes_the_alarm(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    start()
    hass.states.async_set(DOOR, "on")
    hass.states.async_remove(DOOR)
    assert short(sent) == ["cam1 alarm active"]
    hass.states.async_set(DOOR, "off")
    assert short(sent) == ["cam1 alarm active", "cam1 alarm inactive"]


async def test_arming_with_who_changed_it(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    ada = await hass.auth.async_create_user("Ada")
    start()
    await hass.async_block_till_done()
    attrs = {"friendly_name": "House", "changed_by": "Keypad 1"}
    hass.states.async_set(PANEL, "arming", attrs, context=Context(user_id=ada.id))
    hass.states.async_set(PANEL, "armed_away", attrs, context=Context(user_id=ada.id))
    hass.states.async_set(PANEL, "armed_night", {"friendly_name": "House"})
    hass.states.async_set(PANEL, "disarmed", {"friendly_name": "House"}, context=Context(user_id="someone-unknown"))
    assert short(sent) == ["panel1 arming active", "panel1 arming active", "panel1 arming inactive"]
    assert sent[0].payload == {
        "entity_id": PANEL,
        "friendly_name": "House",
        "arming_state": "armed_away",
        "changed_by": "Keypad 1",
        "user": "Ada",
    }
    assert sent[1].payload == {"entity_id": PANEL, "friendly_name": "House", "arming_state": "armed_night"}
    assert sent[2].payload == {"entity_id": PANEL, "friendly_name": "House", "arming_state": "disarmed"}
    assert all(event.recorder_id is None and event.camera_entity_id is None for event in sent)
    assert all(event.signal_monitoring_center is False for event in sent)


async def test_user_names_follow_changes_to_users(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    start()
    bob = await hass.auth.async_create_user("Bob")
    await hass.async_block_till_done()
    hass.states.async_set(PANEL, "armed_home", context=Context(user_id=bob.id))
    await hass.auth.async_update_user(bob, name="Robert")
    await hass.async_block_till_done()
    hass.states.async_set(PANEL, "disarmed", context=Context(user_id=bob.id))
    assert [event.payload["user"] for event in sent] == ["Bob", "Robert"]


async def test_user_names_reload_replaces_one_still_loading(
    hass: HomeAssistant, make_forwarder: Callable[..., Forwarder], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    calls = 0

    async def slow_get_users() -> list[Any]:
        nonlocal calls
        calls += 1
        await release.wait()
        return []

    monkeypatch.setattr(hass.auth, "async_get_users", slow_get_users)
    forwarder = make_forwarder()
    forwarder.async_start()
    first = forwarder._users_task
    assert first is not None
    assert not first.done()
    await hass.auth.async_create_user("Carol")  # a reload cancels the load still waiting
    await asyncio.sleep(0)
    assert first.cancelled()
    assert calls == 2
    forwarder.async_stop()  # and stopping cancels the one waiting now
    await hass.async_block_till_done()
    assert forwarder._users_task is None


async def test_panel_triggered_is_an_alarm_under_the_panels_ids(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass, {PANEL: "armed_away"})
    start()
    for state in ("pending", "triggered", "armed_away", "triggered", "disarmed"):
        hass.states.async_set(PANEL, state)
    assert short(sent) == [
        "panel1 alarm active",
        "panel1 alarm inactive",
        "panel1 alarm active",
        "panel1 alarm inactive",
        "panel1 arming inactive",
    ]
    assert {(e.location_id, e.camera_id, e.recorder_id) for e in sent} == {("LOC1", "PANEL-ZONE", None)}
    assert all(e.snapshot_count == 0 for e in sent)


async def test_trouble_only_after_the_delay(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    forwarder = start()
    hass.states.async_set(FRONT, "unavailable", {"friendly_name": "Front camera"})
    went = hass.states.get(FRONT)
    assert went is not None
    assert forwarder.pending_trouble_timers == {FRONT}
    async_fire_time_changed(hass, later(DELAY - 1))
    await hass.async_block_till_done()
    assert sent == []

    async_fire_time_changed(hass, later(DELAY + 1))
    await hass.async_block_till_done()
    assert short(sent) == ["cam1 trouble active"]
    assert sent[0].event_time == went.last_changed
    assert sent[0].payload == {"entity_id": FRONT, "friendly_name": "Front camera", "state": "unavailable"}
    assert forwarder.pending_trouble_timers == set()

    hass.states.async_set(FRONT, "unavailable", {"friendly_name": "Front camera", "x": 1})  # still the same outage
    assert forwarder.pending_trouble_timers == set()
    hass.states.async_set(FRONT, "idle")
    assert short(sent) == ["cam1 trouble active", "cam1 trouble inactive"]
    assert sent[1].event_status is EventStatus.INACTIVE


async def test_trouble_cancelled_by_recovery(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    forwarder = start()
    hass.states.async_set(DOOR, "unavailable")
    async_fire_time_changed(hass, later(DELAY / 2))
    hass.states.async_set(DOOR, "off")
    assert forwarder.pending_trouble_timers == set()
    assert chekt_timers(hass) == []
    async_fire_time_changed(hass, later(DELAY * 3))
    await hass.async_block_till_done()
    assert sent == []


async def test_trouble_of_entities_unavailable_at_start(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass, {FRONT: "unavailable", PANEL: "unavailable"})
    forwarder = start()
    assert forwarder.pending_trouble_timers == {FRONT, PANEL}
    async_fire_time_changed(hass, later(DELAY + 1))
    await hass.async_block_till_done()
    assert sorted(short(sent)) == ["cam1 trouble active", "panel1 trouble active"]
    panel_trouble = next(e for e in sent if e.source == "panel1")
    assert (panel_trouble.event_type, panel_trouble.camera_id, panel_trouble.recorder_id) == (
        EventType.TROUBLE,
        "PANEL-ZONE",
        None,
    )


async def test_trouble_timers_wait_for_home_assistant_to_start(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    hass.set_state(CoreState.starting)
    set_defaults(hass, {FRONT: "unavailable"})
    forwarder = start()
    hass.states.async_set(DOOR, "unavailable")
    hass.states.async_set(WINDOW, "unavailable")
    hass.states.async_set(WINDOW, "off")  # back before the start: never counted
    assert forwarder.pending_trouble_timers == set()
    async_fire_time_changed(hass, later(DELAY * 3))
    await hass.async_block_till_done()
    assert sent == []

    hass.set_state(CoreState.running)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    await hass.async_block_till_done()
    assert forwarder.pending_trouble_timers == {FRONT, DOOR}
    async_fire_time_changed(hass, later(DELAY + 1))
    await hass.async_block_till_done()
    assert short(sent) == ["cam1 trouble active", "cam1 trouble active"]


async def test_stopped_before_home_assistant_started(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    hass.set_state(CoreState.starting)
    set_defaults(hass, {FRONT: "unavailable"})
    forwarder = start()
    forwarder.async_stop()
    hass.set_state(CoreState.running)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    await hass.async_block_till_done()
    assert forwarder.pending_trouble_timers == set()
    assert chekt_timers(hass) == []


async def test_unmapped_entities_are_ignored(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    hass.states.async_set(UNMAPPED, "off")
    forwarder = start()
    for state in ("on", "off", "unavailable"):
        hass.states.async_set(UNMAPPED, state)
    hass.states.async_set("alarm_control_panel.other", "armed_away")
    hass.states.async_set("alarm_control_panel.other", "triggered")
    async_fire_time_changed(hass, later(DELAY * 3))
    await hass.async_block_till_done()
    assert sent == []
    assert forwarder.pending_trouble_timers == set()
    assert UNMAPPED not in forwarder.rules.memory.last_known


async def test_stop_cancels_timers_and_ignores_later_changes(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    forwarder = start()
    hass.states.async_set(FRONT, "unavailable")
    hass.states.async_set(DOOR, "unavailable")
    assert len(chekt_timers(hass)) == 2
    forwarder.async_stop()
    assert chekt_timers(hass) == []
    assert forwarder.pending_trouble_timers == set()
    hass.states.async_set(FRONT, "idle")
    hass.states.async_set(DOOR, "off")
    hass.states.async_set(DOOR, "on")
    hass.states.async_set(PANEL, "armed_away")
    async_fire_time_changed(hass, later(DELAY * 3))
    await hass.async_block_till_done()
    assert sent == []
    forwarder.async_stop()  # twice is harmless


async def test_started_twice_listens_once(
    hass: HomeAssistant, start: Callable[[], Forwarder], sent: list[OutgoingEvent]
) -> None:
    set_defaults(hass)
    forwarder = start()
    forwarder.async_start()
    hass.states.async_set(DOOR, "on")
    assert short(sent) == ["cam1 alarm active"]


async def test_a_failing_submit_does_not_hold_back_the_others(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    shared = Mappings(cameras=(CAMERA, replace(CAMERA, subentry_id="cam2")))
    received: list[OutgoingEvent] = []

    def submit(event: OutgoingEvent) -> None:
        if event.source == "cam1":
            raise RuntimeError("outbox full")
        received.append(event)

    forwarder = Forwarder(hass, shared, trouble_delay=DELAY, submit=submit)
    set_defaults(hass)
    forwarder.async_start()
    with caplog.at_level(logging.ERROR):
        hass.states.async_set(DOOR, "on")
    forwarder.async_stop()
    assert short(received) == ["cam2 alarm active"]
    assert "Could not submit the alarm/active event of cam1" in caplog.text
