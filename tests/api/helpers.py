"""Values and builders shared by the tests of the CHeKT client library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.chekt.api import (
    ChektClient,
    ChektCredentials,
    ChektEvent,
    EventStatus,
    EventType,
    SigningKey,
)
from tests.simulator import ChektSimulator

SECRET = "shared-secret-for-the-client-tests-0123456789"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
EVENT_TIME = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def make_client(
    sim: ChektSimulator,
    session: aiohttp.ClientSession,
    *,
    client_id: str = "hs-client",
    key: str = SECRET,
    key_id: str | None = None,
    audience: str | None = "events-api",
    api_key: str | None = "the-api-key",
    timeout: float = 5.0,
) -> ChektClient:
    credentials = ChektCredentials(
        token_url=sim.token_url,
        client_id=client_id,
        signing_key=SigningKey.parse(key, key_id),
        audience=audience,
        api_key=api_key,
    )
    return ChektClient(
        session,
        api_url=sim.base_url,
        credentials=credentials,
        request_timeout=timeout,
        upload_timeout=timeout,
    )


def make_event(event_id: str = "1764244800123456", **changes: object) -> ChektEvent:
    fields: dict[str, object] = {
        "location_id": "LOC1",
        "recorder_id": "REC1",
        "camera_id": "CAM1",
        "event_id": event_id,
        "event_type": EventType.ALARM,
        "event_status": EventStatus.ACTIVE,
        "event_time": EVENT_TIME,
        "upload_snapshot_count": 2,
        "payload": {"entity_id": "binary_sensor.front_door"},
    }
    fields.update(changes)
    return ChektEvent(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Canned:
    """One fixed reply."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class CannedServer:
    """Answers each path with the reply set for it, for replies the simulator never gives (3xx, say)."""

    def __init__(self, server: TestServer) -> None:
        self._server = server
        self.replies: dict[str, Canned] = {}
        self.requested: list[str] = []

    def url(self, path: str) -> str:
        return str(self._server.make_url(path))

    async def handle(self, request: web.Request) -> web.Response:
        self.requested.append(request.path)
        reply = self.replies.get(request.path, Canned(404))
        return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
