"""Fixtures shared by every test: custom integrations enabled, and the local CHeKT cloud on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from custom_components.chekt.const import (
    CONF_API_URL,
    CONF_AUDIENCE,
    CONF_CLIENT_ID,
    CONF_SIGNING_KEY,
    CONF_TOKEN_URL,
)

if TYPE_CHECKING:
    from tests.simulator import ChektSimulator

CLIENT_ID = "ha-test-client"
SECRET = "a-shared-secret-of-reasonable-length-0123456789"
AUDIENCE = "https://api.chekt.test/partner-events"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/chekt in every test."""


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """A temporary config folder per test: the outbox writes its media under `.storage`."""
    return hass_tmp_config_dir


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[ChektSimulator]:
    """A running CHeKT cloud simulator with one HS256 client registered."""
    from tests.simulator import ChektSimulator

    sim = ChektSimulator()
    await sim.start()
    sim.add_client(CLIENT_ID, secret=SECRET, audience=AUDIENCE)
    try:
        yield sim
    finally:
        await sim.stop()
    # Every request the integration made must have been well-formed; a test that sends a malformed one on
    # purpose clears the list itself.
    assert not sim.malformed, sim.malformed


@pytest.fixture
def entry_data(simulator: ChektSimulator) -> dict[str, Any]:
    """Config entry data pointing at the simulator, as the config flow stores it."""
    return {
        CONF_API_URL: simulator.base_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: SECRET,
        CONF_AUDIENCE: AUDIENCE,
    }
