"""The forwarding rules: which state changes of mapped entities become CHeKT events. Pure: no Home Assistant.

The forwarder turns each state change into a `StateChange` and asks `ForwardingRules` what to send. The rules
remember what they need between changes in a `RuleMemory` (open alarms, the last arming state per panel, which
entities are unavailable and which troubles were reported) and never look anything up themselves.

Decisions (each one is tested in tests/test_rules.py):

Alarms (camera mappings; the alarm entities are `on`/`off` entities, or `event.*` entities)
- A *real* transition is one whose old state is a state (not absent, `unknown` or `unavailable`) and whose new
  state was not restored at start-up. Only real transitions raise an alarm.
- Every real `off` → `on` of an alarm entity sends `alarm`/`active` (with the camera's snapshots and clips)
  to every camera that lists it; the camera's alarm is then open. Another entity going `on` while it is open
  sends another `alarm`/`active`: each trigger is new and has its own snapshots.
- `alarm`/`inactive` is sent once, when the camera's alarm is open and none of its alarm entities is still
  `on`; never without an `alarm`/`active` before it.
- "Still on" means: the last state the entity had other than `unknown`/`unavailable`/absent is `on`. So
  `on` → `unavailable` keeps the alarm open (the sensor may still see something), and the following
  `unavailable` → `off` closes it. A sensor that went offline while `off` does not hold an alarm open, and
  `unavailable` → `on` neither raises an alarm nor, when none was open, makes an `alarm`/`inactive` possible.
- `event.*` entities are momentary: their state is the time of their last event, so a real change to another
  state sends `alarm`/`active`, with no `alarm`/`inactive` ever; they never hold an alarm open. Out of
  `unknown` (an event entity that never fired) is not a real transition, so that very first event is not sent.

Alarm panels
- `disarmed` and `armed_*` are arming states; `arming`, `pending`, `disarming` and `triggered` are transient
  and leave the arming state as it was. The rules remember the last arming state per panel: the one seen at
  start-up (the baseline, reported as nothing) and then each reported one.
- Entering an arming state that differs from the remembered one sends `arming`/`active` (`armed_*`) or
  `arming`/`inactive` (`disarmed`) with `payload.arming_state`, so `armed_away` → `pending` → `triggered` →
  `armed_away` reports nothing about arming. When no arming state is known yet (the panel was unavailable or
  transient at start-up), its first one is reported only if it came from a transient state (a real arming
  or disarming); out of `unavailable`/`unknown`/absent it only becomes the baseline. With a known one, a
  change that happened while the panel was unavailable (`armed_away` → `unavailable` → `disarmed`) is
  reported.
- A real transition into `triggered` sends `alarm`/`active` under the panel's ids (no media); leaving
  `triggered` for any other state (not `unknown`/`unavailable`/absent) sends `alarm`/`inactive`, if an
  `alarm`/`active` was sent. `triggered` → `disarmed` sends the `alarm`/`inactive` first, then the arming
  event.

Troubles
- Watched: every camera's camera entity and alarm entities when the mapping has `trouble_on_unavailable`, and
  every alarm panel (always: a panel that is gone is a trouble worth knowing about).
- Only the `unavailable` state counts. The forwarder starts a timer per unavailable watched entity; when it
  runs out (`on_trouble_timeout`) each mapping watching it gets `trouble`/`active`, dated when the entity
  became unavailable. An entity without a state (not there yet, or removed) says nothing either way: it
  neither starts an outage nor ends one (`unavailable` → removed → `unavailable` is one outage).
- A recovery (any other state, `unknown` included) before the timer runs out cancels it and sends nothing.
- Like alarms, troubles are per mapping: each entity that stays unavailable sends its own `trouble`/`active`;
  `trouble`/`inactive` is sent once, when none of the mapping's entities with a reported trouble is still
  unavailable, and never without a `trouble`/`active` before it.

Events
- `event_time` is when the state changed (the new state's `last_changed`). `source` is the subentry id.
- Only `alarm`/`active` of a camera carries media (the camera's `snapshot_count`, `upload_short_mp4`,
  `upload_event_mp4`); every event of a camera mapping names its `camera_entity_id` and `recorder_id`; panel
  events have neither. `signal_monitoring_center` is the mapping's.
- The payload holds strings only, and only those known: `entity_id`, `friendly_name`, `device_class`, `state`
  (`arming_state` instead for arming events), `ha_event_type` (the last event of an `event.*` entity),
  `changed_by` (the panel's attribute) and `user` (the Home Assistant user who made the change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeGuard

from .api import EventStatus, EventType
from .mapping import CameraMapping, Mappings, PanelMapping
from .outgoing import OutgoingEvent

STATE_ON: Final = "on"
STATE_OFF: Final = "off"
STATE_UNKNOWN: Final = "unknown"
STATE_UNAVAILABLE: Final = "unavailable"

PANEL_DISARMED: Final = "disarmed"
PANEL_TRIGGERED: Final = "triggered"
ARMED_PREFIX: Final = "armed_"
EVENT_DOMAIN_PREFIX: Final = "event."


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """One state change of an entity, as the rules need it (the forwarder builds it from Home Assistant's).

    `old_state`/`new_state` are None when the entity had or has no state (added or removed).
    `changed_at` is the new state's `last_changed` (aware, UTC). `restored` is Home Assistant's `restored`
    attribute of the new state: a placeholder written at start-up, not something the entity reported.
    """

    entity_id: str
    old_state: str | None
    new_state: str | None
    changed_at: datetime
    friendly_name: str | None = None
    device_class: str | None = None
    ha_event_type: str | None = None
    changed_by: str | None = None
    user_name: str | None = None
    restored: bool = False

    @property
    def is_real(self) -> bool:
        """True for a transition that may raise an alarm: from a real state, to a state not restored."""
        return _is_state(self.old_state) and not self.restored

    def payload(self, **extra: str | None) -> dict[str, Any]:
        """What helps an operator, strings only; `extra` (e.g. `state=`) in place of the default `state`."""
        fields: dict[str, str | None] = {
            "entity_id": self.entity_id,
            "friendly_name": self.friendly_name,
            "device_class": self.device_class,
            "state": self.new_state,
            "ha_event_type": self.ha_event_type,
        }
        fields |= extra
        fields |= {"changed_by": self.changed_by, "user": self.user_name}
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(slots=True)
class RuleMemory:
    """What the rules remember between state changes; owned by the rules' owner, changed only by the rules.

    `last_known`: the last state of each tracked entity other than `unknown`/`unavailable`/absent.
    `open_alarms`: the sources (subentry ids) with an `alarm`/`active` not yet followed by `alarm`/`inactive`.
    `arming`: per panel source, the last arming state reported, or seen first (the baseline).
    `unavailable`: the tracked entities now `unavailable`, with the change that made them so.
    `troubles`: per source, the entities whose `trouble`/`active` was sent and that have not recovered since.
    """

    last_known: dict[str, str] = field(default_factory=dict)
    open_alarms: set[str] = field(default_factory=set)
    arming: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, StateChange] = field(default_factory=dict)
    troubles: dict[str, set[str]] = field(default_factory=dict)

    def reported(self) -> dict[str, Any]:
        """What CHeKT has been told and must be remembered across restarts (open alarms, arming, troubles).

        Without it, a door that closes after a restart would never send the `inactive` of its alarm.
        """
        return {
            "open_alarms": sorted(self.open_alarms),
            "arming": dict(self.arming),
            "troubles": {source: sorted(entities) for source, entities in self.troubles.items() if entities},
        }

    @classmethod
    def from_reported(cls, data: dict[str, Any] | None) -> RuleMemory:
        """A memory that starts from what `reported()` saved; anything unreadable is left out."""
        memory = cls()
        if not isinstance(data, dict):
            return memory
        memory.open_alarms = {s for s in data.get("open_alarms", ()) if isinstance(s, str)}
        memory.arming = {k: v for k, v in dict(data.get("arming", {})).items() if isinstance(v, str)}
        memory.troubles = {
            source: {e for e in entities if isinstance(e, str)}
            for source, entities in dict(data.get("troubles", {})).items()
            if isinstance(entities, list)
        }
        return memory


def _is_state(state: str | None) -> TypeGuard[str]:
    """True for a state that says something: not absent, `unknown` or `unavailable`."""
    return state is not None and state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)


def is_unavailable(state: str | None) -> bool:
    """True for the `unavailable` state, the only one that can become a trouble."""
    return state == STATE_UNAVAILABLE


def is_arming_state(state: str | None) -> TypeGuard[str]:
    """True for `disarmed` and every `armed_*` state of an alarm control panel."""
    return state is not None and (state == PANEL_DISARMED or state.startswith(ARMED_PREFIX))


def is_momentary(entity_id: str) -> bool:
    """True for `event.*` entities, whose state is the time of their last event."""
    return entity_id.startswith(EVENT_DOMAIN_PREFIX)


class ForwardingRules:
    """The rules for one config entry's mappings, with their memory.

    Call `seed` once with the states at start (nothing is sent for them), then `on_change` for each state
    change of a tracked entity and `on_trouble_timeout` when an entity's trouble delay has run out.
    """

    def __init__(self, mappings: Mappings, memory: RuleMemory | None = None) -> None:
        """Rules for `mappings`, starting from `memory` (a fresh one when None)."""
        self.mappings = mappings
        self.memory = memory if memory is not None else RuleMemory()
        self.tracked_entity_ids: frozenset[str] = frozenset(mappings.tracked_entity_ids())
        self.trouble_entity_ids: frozenset[str] = frozenset(
            {e for camera in mappings.cameras if camera.trouble_on_unavailable for e in camera.entity_ids}
            | {panel.panel_entity_id for panel in mappings.panels}
        )
        # Which mappings each entity concerns, looked up on every state change: indexed once, never searched.
        self._alarmed_by: dict[str, list[CameraMapping]] = {}
        self._panels: dict[str, PanelMapping] = {}
        self._watchers: dict[str, list[CameraMapping | PanelMapping]] = {}
        for camera in mappings.cameras:
            for entity_id in dict.fromkeys(camera.alarm_entity_ids):
                self._alarmed_by.setdefault(entity_id, []).append(camera)
            if camera.trouble_on_unavailable:
                for entity_id in dict.fromkeys(camera.entity_ids):
                    self._watchers.setdefault(entity_id, []).append(camera)
        for panel in mappings.panels:
            self._panels.setdefault(panel.panel_entity_id, panel)
            self._watchers.setdefault(panel.panel_entity_id, []).append(panel)

    def seed(self, current: Iterable[StateChange]) -> list[OutgoingEvent]:
        """Take the states at start as the baseline, each as a change from no state.

        With a fresh memory that sends nothing. With one restored from before a restart it sends what happened
        meanwhile: the `inactive` of an alarm whose sensors are all off now, a change of arming.
        """
        return [event for change in current for event in self.on_change(change)]

    def awaits_trouble(self, entity_id: str) -> bool:
        """True when `entity_id` is unavailable and a mapping watching it has no trouble of it yet.

        This is when a trouble timer should run for it.
        """
        if entity_id not in self.memory.unavailable:
            return False
        troubles = self.memory.troubles
        return any(
            entity_id not in troubles.get(mapping.subentry_id, ()) for mapping in self._trouble_mappings(entity_id)
        )

    def on_change(self, change: StateChange) -> list[OutgoingEvent]:
        """The events a state change sends (usually none or one), in order; updates the memory."""
        entity_id = change.entity_id
        if entity_id not in self.tracked_entity_ids:
            return []
        events = self._troubles_recovered(change)
        for camera in self._alarmed_by.get(entity_id, ()):
            events.extend(self._camera_alarm(camera, change))
        if (panel := self._panels.get(entity_id)) is not None:
            events.extend(self._panel(panel, change))
        if _is_state(new := change.new_state):
            self.memory.last_known[entity_id] = new
        return events

    def on_trouble_timeout(self, entity_id: str) -> list[OutgoingEvent]:
        """`trouble`/`active` for each mapping watching `entity_id`, if it is still unavailable."""
        if not self.awaits_trouble(entity_id):
            return []
        change = self.memory.unavailable[entity_id]
        events: list[OutgoingEvent] = []
        for mapping in self._trouble_mappings(entity_id):
            troubled = self.memory.troubles.setdefault(mapping.subentry_id, set())
            if entity_id not in troubled:
                troubled.add(entity_id)
                events.append(_event(mapping, EventType.TROUBLE, EventStatus.ACTIVE, change))
        return events

    # Alarms of cameras.

    def _camera_alarm(self, camera: CameraMapping, change: StateChange) -> list[OutgoingEvent]:
        if is_momentary(change.entity_id):
            if change.is_real and _is_state(change.new_state) and change.new_state != change.old_state:
                return [_alarm_active(camera, change)]
            return []
        open_alarms = self.memory.open_alarms
        if change.is_real and change.old_state == STATE_OFF and change.new_state == STATE_ON:
            open_alarms.add(camera.subentry_id)
            return [_alarm_active(camera, change)]
        if (
            change.new_state == STATE_OFF
            and camera.subentry_id in open_alarms
            and not self._others_on(camera, change.entity_id)
        ):
            open_alarms.discard(camera.subentry_id)
            return [_event(camera, EventType.ALARM, EventStatus.INACTIVE, change)]
        return []

    def _others_on(self, camera: CameraMapping, entity_id: str) -> bool:
        """True when an alarm entity of `camera` other than `entity_id` was last seen `on`."""
        return any(
            self.memory.last_known.get(other) == STATE_ON
            for other in camera.alarm_entity_ids
            if other != entity_id and not is_momentary(other)
        )

    # Alarm panels: their alarms, then their arming.

    def _panel(self, panel: PanelMapping, change: StateChange) -> list[OutgoingEvent]:
        new = change.new_state
        open_alarms = self.memory.open_alarms
        events: list[OutgoingEvent] = []
        if new == PANEL_TRIGGERED:
            if change.is_real and change.old_state != PANEL_TRIGGERED:
                open_alarms.add(panel.subentry_id)
                events.append(_event(panel, EventType.ALARM, EventStatus.ACTIVE, change))
        elif _is_state(new) and panel.subentry_id in open_alarms:
            open_alarms.discard(panel.subentry_id)
            events.append(_event(panel, EventType.ALARM, EventStatus.INACTIVE, change))
        if is_arming_state(new):
            events.extend(self._arming(panel, change, new))
        return events

    def _arming(self, panel: PanelMapping, change: StateChange, new: str) -> list[OutgoingEvent]:
        known = self.memory.arming.get(panel.subentry_id)
        self.memory.arming[panel.subentry_id] = new
        if change.restored or new == known or (known is None and not _is_state(change.old_state)):
            return []
        status = EventStatus.INACTIVE if new == PANEL_DISARMED else EventStatus.ACTIVE
        payload = change.payload(state=None, arming_state=new)
        return [_event(panel, EventType.ARMING, status, change, payload)]

    # Troubles.

    def _trouble_mappings(self, entity_id: str) -> list[CameraMapping | PanelMapping]:
        """Each mapping watching `entity_id` for troubles (the index's own list: read it, never change it)."""
        return self._watchers.get(entity_id, [])

    def _troubles_recovered(self, change: StateChange) -> list[OutgoingEvent]:
        """Record (un)availability; `trouble`/`inactive` for each mapping whose last open trouble ended."""
        entity_id = change.entity_id
        memory = self.memory
        if change.new_state is None:
            return []
        if is_unavailable(change.new_state):
            memory.unavailable.setdefault(entity_id, change)
            return []
        memory.unavailable.pop(entity_id, None)
        events: list[OutgoingEvent] = []
        for mapping in self._trouble_mappings(entity_id):
            troubled = memory.troubles.get(mapping.subentry_id, set())
            if entity_id not in troubled:
                continue
            troubled.discard(entity_id)
            if not troubled:
                del memory.troubles[mapping.subentry_id]
                events.append(_event(mapping, EventType.TROUBLE, EventStatus.INACTIVE, change))
        return events


def _alarm_active(camera: CameraMapping, change: StateChange) -> OutgoingEvent:
    """`alarm`/`active` of a camera, with its snapshots and clips."""
    return OutgoingEvent(
        source=camera.subentry_id,
        event_type=EventType.ALARM,
        event_status=EventStatus.ACTIVE,
        event_time=change.changed_at,
        location_id=camera.location_id,
        camera_id=camera.camera_id,
        recorder_id=camera.recorder_id,
        signal_monitoring_center=camera.signal_monitoring_center,
        snapshot_count=camera.snapshot_count,
        upload_short_mp4=camera.upload_short_mp4,
        upload_event_mp4=camera.upload_event_mp4,
        camera_entity_id=camera.camera_entity_id,
        payload=change.payload(),
    )


def _event(
    mapping: CameraMapping | PanelMapping,
    event_type: EventType,
    status: EventStatus,
    change: StateChange,
    payload: dict[str, Any] | None = None,
) -> OutgoingEvent:
    """An event without media under the ids of `mapping`; a camera's adds its recorder and camera entity."""
    camera = mapping if isinstance(mapping, CameraMapping) else None
    return OutgoingEvent(
        source=mapping.subentry_id,
        event_type=event_type,
        event_status=status,
        event_time=change.changed_at,
        location_id=mapping.location_id,
        camera_id=mapping.camera_id,
        recorder_id=camera.recorder_id if camera is not None else None,
        signal_monitoring_center=mapping.signal_monitoring_center,
        camera_entity_id=camera.camera_entity_id if camera is not None else None,
        payload=payload if payload is not None else change.payload(),
    )
