"""Diagnostics for support: the configuration with secrets redacted, the mappings and the outbox state."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from . import ChektConfigEntry
from .const import CONF_API_KEY, CONF_AUDIENCE, CONF_CLIENT_ID, CONF_KEY_ID, CONF_SIGNING_KEY

# The client id and key id identify the account to CHeKT support without granting anything, but they are
# still redacted: diagnostics get pasted into public issue trackers.
TO_REDACT = {CONF_SIGNING_KEY, CONF_API_KEY, CONF_CLIENT_ID, CONF_KEY_ID, CONF_AUDIENCE}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: ChektConfigEntry) -> dict[str, Any]:
    """What support needs to understand a problem, and nothing that grants access."""
    runtime = entry.runtime_data
    state = runtime.outbox.state
    return {
        "entry": {
            "title": _redacted_title(entry),
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "subentries": [
            {"type": subentry.subentry_type, "title": subentry.title, "data": dict(subentry.data)}
            for subentry in entry.subentries.values()
        ],
        "mappings": {
            "cameras": [asdict(camera) for camera in runtime.mappings.cameras],
            "panels": [asdict(panel) for panel in runtime.mappings.panels],
        },
        "outbox": {
            "backlog": state.backlog,
            "events_sent": state.events_sent,
            "pending_uploads": state.pending_uploads,
            "cloud_reachable": state.cloud_reachable,
            "last_event_time": state.last_event_time.isoformat() if state.last_event_time else None,
            "last_event_type": state.last_event_type,
            "last_status": state.last_status,
            "last_reason": state.last_reason,
        },
        "token_expires_at": runtime.client.tokens.expires_at or None,
    }


def _redacted_title(entry: ChektConfigEntry) -> str:
    """The entry's title without the client id, which the config flow puts there (`CHeKT (<client id>)`)."""
    title = entry.title
    if client_id := str(entry.data.get(CONF_CLIENT_ID) or "").strip():
        title = title.replace(client_id, REDACTED)
    return title
