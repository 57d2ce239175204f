"""Fixtures of the client library tests: the local CHeKT cloud, a session, and a bare HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from tests.simulator import ChektSimulator

from .helpers import SECRET, CannedServer


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[ChektSimulator]:
    simulator = ChektSimulator()
    await simulator.start()
    simulator.add_client("hs-client", secret=SECRET, audience="events-api", api_key="the-api-key")
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def canned(socket_enabled: None) -> AsyncIterator[CannedServer]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    canned_server = CannedServer(server)
    app.router.add_route("*", "/{tail:.*}", canned_server.handle)
    await server.start_server()
    try:
        yield canned_server
    finally:
        await server.close()
