"""Diagnostics: what support needs, and never a secret."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.chekt.const import CONF_API_KEY, CONF_CLIENT_ID, CONF_KEY_ID, CONF_SIGNING_KEY
from tests.common import FakeCamera, camera_subentry, panel_subentry, setup_cameras, setup_entry
from tests.conftest import AUDIENCE
from tests.simulator import ChektSimulator

MOTION = "binary_sensor.front_motion"
CLIENT_ID = "diagnostics-client-4f1c9a"
SECRET = "diagnostics-shared-secret-9b8c7d6e5f4a3b2c1d0e"
KEY_ID = "diagnostics-key-id-77"
API_KEY = "diagnostics-api-key-0a1b2c3d"
REDACTED = "**REDACTED**"


async def test_diagnostics_redact_every_secret(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
) -> None:
    simulator.add_client(CLIENT_ID, secret=SECRET, key_id=KEY_ID, audience=AUDIENCE, api_key=API_KEY)
    data = entry_data | {
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: SECRET,
        CONF_KEY_ID: KEY_ID,
        CONF_API_KEY: API_KEY,
    }
    await setup_cameras(hass, FakeCamera("front"))
    hass.states.async_set(MOTION, "off")
    entry = await setup_entry(hass, data, camera_subentry(snapshot_count=2), panel_subentry())
    hass.states.async_set(MOTION, "on")
    await simulator.wait_for(lambda: len(simulator.callbacks) == 2)
    await hass.async_block_till_done(wait_background_tasks=True)  # the replies reached the outbox too

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    # Useful: the mappings, the options and what the outbox did.
    assert diagnostics["entry"]["title"] == "CHeKT (**REDACTED**)"
    assert diagnostics["entry"]["options"] == dict(entry.options)
    assert {sub["type"] for sub in diagnostics["subentries"]} == {"camera", "alarm_panel"}
    assert diagnostics["mappings"]["cameras"][0]["camera_id"] == "CAM-front"
    assert diagnostics["mappings"]["panels"][0]["camera_id"] == "CAM-PANEL"
    assert diagnostics["outbox"]["events_sent"] == 1
    assert diagnostics["outbox"]["backlog"] == 0
    assert diagnostics["outbox"]["pending_uploads"] == 0
    assert diagnostics["outbox"]["cloud_reachable"] is True
    assert diagnostics["outbox"]["last_status"] == "accepted"
    assert diagnostics["token_expires_at"] is not None
    for key in (CONF_SIGNING_KEY, CONF_CLIENT_ID, CONF_KEY_ID, CONF_API_KEY):
        assert diagnostics["entry"]["data"][key] == REDACTED

    # Safe: no credential, token or pre-signed URL anywhere, not even inside another string.
    record = simulator.events[0]
    token = record.headers["Authorization"].removeprefix("Bearer ")
    assert record.headers["X-API-KEY"] == API_KEY
    assert record.response is not None
    secrets = [SECRET, CLIENT_ID, KEY_ID, API_KEY, token]
    for target in record.response["uploads"]["snapshots"]:
        for url in (target["upload_put_url"], target["callback_put_url"]):
            secrets.append(url)
            query = parse_qs(urlsplit(url).query)
            secrets.extend(query.get("signature", []) + query.get("access_token", []))
    assert len(secrets) == 5 + 2 * 2 + 2 * 2  # both snapshots' URLs, signatures and callback tokens
    dumped = json.dumps(diagnostics)
    for secret in secrets:
        assert secret not in dumped


async def test_diagnostics_before_any_event(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: ChektSimulator,
    entry_data: dict[str, Any],
) -> None:
    entry = await setup_entry(hass, entry_data)
    await hass.async_block_till_done(wait_background_tasks=True)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["subentries"] == []
    assert diagnostics["mappings"] == {"cameras": [], "panels": []}
    assert diagnostics["outbox"]["last_event_time"] is None
    assert diagnostics["outbox"]["cloud_reachable"] is True  # the token endpoint answered
    assert entry_data[CONF_SIGNING_KEY] not in json.dumps(diagnostics)
    assert entry_data[CONF_CLIENT_ID] not in json.dumps(diagnostics)
