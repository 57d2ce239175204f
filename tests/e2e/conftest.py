"""Fixtures of the end-to-end tests: a real Home Assistant process, set up only through its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import HassApi, HassProcess, free_port, prepare_config


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Home Assistant runs in a process of its own here: no in-process `hass` is set up."""


@pytest.fixture
async def hass_process(socket_enabled: None, tmp_path: Path) -> AsyncIterator[HassProcess]:
    """A Home Assistant with the demo configuration on a free port (not started yet); stopped at the end."""
    config_dir = tmp_path / "config"
    port = free_port()
    prepare_config(config_dir, port=port, chekt_log_level="debug")
    process = HassProcess(config_dir, port)
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the test's requests to Home Assistant."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def hass_api(http: aiohttp.ClientSession, hass_process: HassProcess) -> HassApi:
    """Home Assistant's HTTP API, not logged in yet."""
    return HassApi(http, hass_process.base_url)
