"""`ChektSimulator`: the CHeKT cloud (token endpoint, event API, S3 uploads, callbacks) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
import socket
import time
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .auth import AccessTokens, AssertionVerifier, SimClient, TokenEndpoint
from .events import EventEndpoint
from .faults import Endpoint, Fault, FaultKind, FaultPlan
from .media import CALLBACK_ROUTE, UPLOAD_ROUTE, CallbackEndpoint, MediaSigner, MediaStore, UploadEndpoint
from .page import MEDIA_ROUTE, PageEndpoints
from .records import (
    CallbackRecord,
    EventOutcome,
    EventRecord,
    FaultRecord,
    MalformedRecord,
    RecordListener,
    Records,
    TokenRequestRecord,
    UploadRecord,
)
from .replies import api_error, hang_up, oauth_error, s3_error
from .urls import EVENTS_PATH, TOKEN_PATH, SimUrls
from .validation import BodyError, parse_json

type FaultAwareHandler = Callable[[web.Request, FaultKind | None], Awaitable[web.Response]]

# Uploads are whole MP4 clips; aiohttp's default 1 MiB request limit is far too small for them.
MAX_REQUEST_BYTES = 256 * 1024 * 1024
# When the "cloud goes down", requests in flight get this long before their connections are cut.
SHUTDOWN_GRACE = 0.2
WAIT_POLL_INTERVAL = 0.01


class ChektSimulator:
    """A local CHeKT cloud faithful to the Partner Event API v0.8, with records and fault injection."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, token_ttl: int = 3600, upload_ttl: float = 300.0
    ) -> None:
        """Configure; nothing listens before `start()`. Port 0 picks a free port on the first start."""
        self._host = host
        self._port = port
        self._urls = SimUrls()
        self._runner: web.AppRunner | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.records = Records()
        self.clients: dict[str, SimClient] = {}
        self.disarmed_locations: set[str] = set()
        self._faults = FaultPlan()
        self._tokens = AccessTokens(self._urls, token_ttl)
        self._store = MediaStore()
        signer = MediaSigner(self._urls, upload_ttl)
        self._token_endpoint = TokenEndpoint(self.records, AssertionVerifier(self._urls, self.clients), self._tokens)
        self._event_endpoint = EventEndpoint(self.records, self._tokens, self.clients, signer, self.disarmed_locations)
        self._upload_endpoint = UploadEndpoint(self.records, signer, self._store)
        self._callback_endpoint = CallbackEndpoint(self.records, signer, self._store)
        self._pages = PageEndpoints(self.records, self._store, self._faults, self.disarmed_locations)

    # -- lifecycle --

    async def start(self) -> None:
        """Listen; after the first start the port stays the same, so clients find the cloud where it was."""
        if self._runner is not None:
            return
        sock = self._bind()
        self._port = sock.getsockname()[1]
        self._urls.base_url = f"http://{_url_host(self._host)}:{self._port}"
        runner = web.AppRunner(
            self._build_app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
        )
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Close the listening socket and every open connection: the cloud goes down."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._end_orphaned_handlers()

    async def _end_orphaned_handlers(self) -> None:
        """Cancel handlers still running after their client hung up (e.g. it timed out during a delay fault).

        Like a real server, the simulator goes on processing a request whose client has gone, so those
        handlers belong to no connection any more and the runner's shutdown does not see them.
        """
        orphans = [task for task in self._in_flight if not task.done()]
        for task in orphans:
            task.cancel()
        await asyncio.gather(*orphans, return_exceptions=True)

    @property
    def running(self) -> bool:
        """Whether the simulator is listening."""
        return self._runner is not None

    async def __aenter__(self) -> Self:
        """Start for the duration of an `async with` block."""
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop at the end of the block."""
        await self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # Connections the simulator closed linger in TIME_WAIT; without this a restart cannot rebind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post(TOKEN_PATH, self._with_faults(Endpoint.TOKEN, self._token_endpoint.handle))
        app.router.add_post(EVENTS_PATH, self._with_faults(Endpoint.EVENTS, self._event_endpoint.handle))
        app.router.add_put(UPLOAD_ROUTE, self._with_faults(Endpoint.UPLOAD, self._upload_endpoint.handle))
        app.router.add_put(CALLBACK_ROUTE, self._with_faults(Endpoint.CALLBACK, self._callback_endpoint.handle))
        app.router.add_get("/", self._pages.page)
        app.router.add_get("/api/state", self._pages.state)
        app.router.add_get(MEDIA_ROUTE, self._pages.media)
        return app

    # -- URLs --

    @property
    def port(self) -> int:
        """The port; 0 until the first start when it was configured as 0."""
        return self._port

    @property
    def base_url(self) -> str:
        """The API URL the client is configured with, e.g. `http://127.0.0.1:8181`."""
        return self._urls.api_url

    @property
    def token_url(self) -> str:
        """The token endpoint, `base_url + "/oauth/token"`."""
        return self._urls.token_url

    @property
    def issuer(self) -> str:
        """The issuer, `base_url + "/"`; assertions may name it or the token URL as `aud`."""
        return self._urls.issuer

    @property
    def page_url(self) -> str:
        """The HTML page listing received events."""
        return self._urls.page_url

    # -- configuration --

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        public_key_pem: str | None = None,
        key_id: str | None = None,
        audience: str | None = None,
        api_key: str | None = None,
    ) -> SimClient:
        """Register an M2M application: a shared `secret` (HS256) or a `public_key_pem` (RS256/ES256)."""
        client = SimClient.register(
            client_id,
            secret=secret,
            public_key_pem=public_key_pem,
            key_id=key_id,
            audience=audience,
            api_key=api_key,
        )
        self.clients[client_id] = client
        return client

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working; the next event with one gets 401."""
        self._tokens.revoke_all()

    def inject(self, fault: Fault) -> None:
        """Queue a fault; queued faults apply in order to the requests they target."""
        self._faults.inject(fault)

    def set_random_faults(self, *, rate: float, faults: Sequence[Fault], seed: int) -> None:
        """Each request to an endpoint some fault targets suffers one with probability `rate` (0: off)."""
        self._faults.set_random(rate=rate, faults=faults, seed=seed)

    @property
    def pending_faults(self) -> int:
        """How many requests the queued faults will still affect."""
        return self._faults.pending

    # -- records --

    @property
    def token_requests(self) -> list[TokenRequestRecord]:
        """Every request to the token endpoint."""
        return self.records.token_requests

    @property
    def events(self) -> list[EventRecord]:
        """Every request to the event endpoint, refused ones included."""
        return self.records.events

    @property
    def accepted(self) -> dict[str, EventRecord]:
        """event_id -> the record of its first acceptance."""
        return self.records.accepted

    @property
    def duplicate_accepts(self) -> int:
        """How many times an already accepted event_id was accepted as new again (double delivery)."""
        return self.records.duplicate_accepts

    @property
    def uploads(self) -> list[UploadRecord]:
        """Every stored upload."""
        return self.records.uploads

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every authenticated callback, with whether its upload preceded it."""
        return self.records.callbacks

    @property
    def malformed(self) -> list[MalformedRecord]:
        """Every request answered 400/409 for its shape or body, with the message sent back."""
        return self.records.malformed

    @property
    def faults(self) -> list[FaultRecord]:
        """Every fault applied, in order."""
        return self.records.faults

    def add_listener(self, listener: RecordListener) -> Callable[[], None]:
        """Call `listener` with each event, upload and callback record as it is answered; returns the remover.

        Called inside the request's handler, on the simulator's loop: it must be quick and must not block.
        """
        self.records.listeners.append(listener)
        return lambda: self.records.listeners.remove(listener)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll until `predicate()` is true; TimeoutError names the predicate and what was recorded so far."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                name = getattr(predicate, "__qualname__", repr(predicate))
                raise TimeoutError(f"{name} still false after {timeout:g} s; simulator saw {self.records.counts()}")
            await asyncio.sleep(WAIT_POLL_INTERVAL)

    # -- faults --

    def _with_faults(
        self, endpoint: Endpoint, handler: FaultAwareHandler
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            task = asyncio.current_task()
            assert task is not None  # aiohttp runs every handler in a task of its own
            self._in_flight.add(task)
            try:
                fault = self._faults.take(endpoint)
                if fault is None:
                    return await handler(request, None)
                self.records.faults.append(FaultRecord(endpoint=endpoint, kind=fault.kind, path=request.path))
                return await self._apply(fault, request, handler)
            finally:
                self._in_flight.discard(task)

        return handle

    async def _apply(self, fault: Fault, request: web.Request, handler: FaultAwareHandler) -> web.Response:
        match fault.kind:
            case FaultKind.DELAY:
                await asyncio.sleep(fault.seconds)
                return await handler(request, fault.kind)
            case FaultKind.LOSE_REPLY:
                await handler(request, fault.kind)
                return hang_up(request)
            case FaultKind.MALFORMED_REPLY:
                reply = await handler(request, fault.kind)
                return web.Response(status=reply.status, text=fault.body, content_type="application/json")
            case FaultKind.DROP:
                await self._record_unprocessed(request, fault, status=0)
                return hang_up(request)
            case _:
                reply = _fault_reply(fault)
                await self._record_unprocessed(request, fault, status=reply.status)
                return reply

    async def _record_unprocessed(self, request: web.Request, fault: Fault, *, status: int) -> None:
        """Record event and token requests that a fault answered (status 0: no reply at all)."""
        if fault.target is Endpoint.TOKEN:
            self.records.token_requests.append(TokenRequestRecord(status=status, fault=fault.kind))
        elif fault.target is Endpoint.EVENTS:
            body = await _best_effort_json(request)
            event_id = body.get("event_id") if isinstance(body, dict) else None
            self.records.events.append(
                EventRecord(
                    status=status,
                    outcome=EventOutcome.FAULTED,
                    headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                    body=body,
                    event_id=event_id if isinstance(event_id, str) else None,
                    idempotency_key=request.headers.get("Idempotency-Key"),
                    fault=fault.kind,
                )
            )


def _fault_reply(fault: Fault) -> web.Response:
    """The reply of a fault that answers instead of the endpoint, in the endpoint's own error shape."""
    status = {FaultKind.RATE_LIMIT: 429, FaultKind.UNAUTHORIZED: 401}.get(fault.kind, fault.status)
    headers = {"Retry-After": str(fault.retry_after)} if fault.kind is FaultKind.RATE_LIMIT else None
    message = f"injected {fault.kind} fault"
    match fault.target:
        case Endpoint.TOKEN:
            error = {401: "invalid_client", 429: "too_many_requests"}.get(status, "server_error")
            return oauth_error(status, error, message, headers=headers)
        case Endpoint.UPLOAD:
            # Uploads go to S3 in real life, which answers in its own XML shape.
            return s3_error(status, HTTPStatus(status).phrase.replace(" ", ""), message, headers=headers)
        case _:
            return api_error(status, message, headers=headers)


async def _best_effort_json(request: web.Request) -> Any:
    try:
        return parse_json(await request.read())
    except BodyError:
        return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
