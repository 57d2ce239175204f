"""Feeds the forwarding rules with the state changes of mapped entities and hands their events on.

The rules themselves (`rules.py`) know nothing of Home Assistant; this module listens to the mapped entities
only, translates each state change, runs the trouble timers and calls `submit` with each event, synchronously,
the moment the state changes. Delivering it is someone else's job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from homeassistant.auth import EVENT_USER_ADDED, EVENT_USER_REMOVED, EVENT_USER_UPDATED
from homeassistant.components.alarm_control_panel.const import ATTR_CHANGED_BY
from homeassistant.components.event.const import ATTR_EVENT_TYPE
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME, ATTR_RESTORED
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HassJob,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers.event import async_call_later, async_track_state_change_event
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .const import LOGGER
from .mapping import Mappings
from .outgoing import OutgoingEvent
from .rules import ForwardingRules, RuleMemory, StateChange, is_momentary


class Forwarder:
    """Turns the state changes of one config entry's mapped entities into CHeKT events.

    `async_start` takes the current states as the baseline (nothing is sent for them) and listens;
    `async_stop` stops listening and cancels every timer. `submit` is called from Home Assistant's event loop,
    inside the state change callback: it must not block.

    Trouble timers start once Home Assistant has started (at once when it already has): then every watched
    entity that is `unavailable` gets the whole `trouble_delay`, and later each one that becomes unavailable.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        mappings: Mappings,
        *,
        trouble_delay: float,
        submit: Callable[[OutgoingEvent], object],
        memory: RuleMemory | None = None,
    ) -> None:
        """Forward the changes of `mappings`' entities; troubles after `trouble_delay` seconds unavailable.

        `memory` is what the rules knew before a restart (see `RuleMemory.reported`).
        """
        self._hass = hass
        self._rules = ForwardingRules(mappings, memory)
        self._trouble_delay = trouble_delay
        self._submit = submit
        self._running = False
        self._ha_started = False
        self._unsubscribes: list[CALLBACK_TYPE] = []
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._user_names: dict[str, str] = {}
        self._users_task: asyncio.Task[None] | None = None

    @property
    def rules(self) -> ForwardingRules:
        """The rules and their memory (read them; only the forwarder feeds them)."""
        return self._rules

    @property
    def pending_trouble_timers(self) -> frozenset[str]:
        """The entities whose trouble delay is running."""
        return frozenset(self._timers)

    @callback
    def async_start(self) -> None:
        """Take the current states as the baseline and listen to the mapped entities; once only."""
        if self._running:
            return
        self._running = True
        hass = self._hass
        tracked = sorted(self._rules.tracked_entity_ids)
        now = dt_util.utcnow()
        self._send(
            self._rules.seed(_state_change(entity_id, None, hass.states.get(entity_id), now) for entity_id in tracked)
        )
        self._unsubscribes.append(async_track_state_change_event(hass, tracked, self._async_state_changed))
        for event_type in (EVENT_USER_ADDED, EVENT_USER_UPDATED, EVENT_USER_REMOVED):
            self._unsubscribes.append(hass.bus.async_listen(event_type, self._async_users_changed))
        self._async_users_changed()
        # Troubles only count once Home Assistant has started: until then, integrations are still loading.
        self._unsubscribes.append(async_at_started(hass, self._async_ha_started))

    @callback
    def async_stop(self) -> None:
        """Stop listening and cancel every trouble timer; later state changes send nothing."""
        self._running = False
        self._ha_started = False
        while self._unsubscribes:
            self._unsubscribes.pop()()
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        if self._users_task is not None and not self._users_task.done():
            self._users_task.cancel()
        self._users_task = None

    @callback
    def _async_ha_started(self, _hass: HomeAssistant) -> None:
        """Start the trouble timers of the entities that are unavailable now."""
        self._ha_started = True
        for entity_id in sorted(self._rules.trouble_entity_ids):
            self._update_timer(entity_id)

    @callback
    def _async_state_changed(self, event: Event[EventStateChangedData]) -> None:
        """Run the rules on one state change and submit what they decide."""
        data = event.data
        change = _state_change(
            data["entity_id"],
            data["old_state"],
            data["new_state"],
            event.time_fired,
            user_name=self._user_names.get(event.context.user_id or ""),
        )
        events = self._rules.on_change(change)
        self._update_timer(change.entity_id)
        self._send(events)

    @callback
    def _update_timer(self, entity_id: str) -> None:
        """Start the entity's trouble timer when the rules await a trouble of it, else cancel it."""
        if self._rules.awaits_trouble(entity_id):
            if self._ha_started and entity_id not in self._timers:
                job = HassJob(partial(self._async_trouble_timeout, entity_id), f"chekt trouble {entity_id}")
                self._timers[entity_id] = async_call_later(self._hass, self._trouble_delay, job)
        elif (cancel := self._timers.pop(entity_id, None)) is not None:
            cancel()

    @callback
    def _async_trouble_timeout(self, entity_id: str, _now: datetime) -> None:
        """The entity stayed unavailable for the whole delay: send its troubles."""
        self._timers.pop(entity_id, None)
        self._send(self._rules.on_trouble_timeout(entity_id))

    def _send(self, events: list[OutgoingEvent]) -> None:
        """Hand each event to `submit`; one that fails does not keep the others back."""
        for outgoing in events:
            try:
                self._submit(outgoing)
            except Exception:  # noqa: BLE001 -- logged; a failing submit must not hold back the others
                LOGGER.exception(
                    "Could not submit the %s/%s event of %s",
                    outgoing.event_type,
                    outgoing.event_status,
                    outgoing.source,
                )

    @callback
    def _async_users_changed(self, _event: Event[Mapping[str, Any]] | None = None) -> None:
        """(Re)load the names of Home Assistant's users, to say who changed a state."""
        if self._users_task is not None and not self._users_task.done():
            self._users_task.cancel()
        self._users_task = self._hass.async_create_task(self._async_load_user_names(), "chekt user names")

    async def _async_load_user_names(self) -> None:
        users = await self._hass.auth.async_get_users()
        self._user_names = {user.id: user.name for user in users if user.name}


def _text(value: Any) -> str | None:
    """An attribute as a string for the payload (None stays None)."""
    return None if value is None else str(value)


def _state_change(
    entity_id: str,
    old: State | None,
    new: State | None,
    fallback_time: datetime,
    *,
    user_name: str | None = None,
) -> StateChange:
    """The rules' view of a state change; the attributes come from the new state, or the old when removed."""
    latest = new if new is not None else old
    attributes: Mapping[str, Any] = latest.attributes if latest is not None else {}
    return StateChange(
        entity_id=entity_id,
        old_state=old.state if old is not None else None,
        new_state=new.state if new is not None else None,
        changed_at=new.last_changed if new is not None else fallback_time,
        friendly_name=_text(attributes.get(ATTR_FRIENDLY_NAME)),
        device_class=_text(attributes.get(ATTR_DEVICE_CLASS)),
        ha_event_type=_text(attributes.get(ATTR_EVENT_TYPE)) if is_momentary(entity_id) else None,
        changed_by=_text(attributes.get(ATTR_CHANGED_BY)),
        user_name=user_name,
        restored=new is not None and bool(new.attributes.get(ATTR_RESTORED, False)),
    )
