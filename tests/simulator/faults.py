"""Faults the simulator can inject into its replies, queued one by one or drawn at random."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
import random


class Endpoint(StrEnum):
    """The simulator's endpoints that a fault (or a malformed-request record) can concern."""

    TOKEN = "token"
    EVENTS = "events"
    UPLOAD = "upload"
    CALLBACK = "callback"


class FaultKind(StrEnum):
    """What goes wrong with a request."""

    STATUS = "status"
    """Answer `Fault.status` (e.g. 500/502/503) with a JSON error body, without processing."""
    RATE_LIMIT = "rate_limit"
    """Answer 429 with `Retry-After: Fault.retry_after`, without processing."""
    UNAUTHORIZED = "unauthorized"
    """Answer 401, without processing."""
    DROP = "drop"
    """Close the connection without any reply, without processing."""
    LOSE_REPLY = "lose_reply"
    """Process and record the request normally, then close the connection instead of replying."""
    DELAY = "delay"
    """Sleep `Fault.seconds`, then process and answer normally."""
    MALFORMED_REPLY = "malformed_reply"
    """Process and record the request normally, then answer its status (201) with `Fault.body` as body."""


@dataclass(frozen=True, slots=True, init=False)
class Fault:
    """One fault for the next `count` requests to `target`.

    `status` is the reply of a STATUS fault, `retry_after` the header of a RATE_LIMIT fault, `seconds` the
    wait of a DELAY fault and `body` the reply body of a MALFORMED_REPLY fault.
    """

    target: Endpoint
    kind: FaultKind
    count: int
    status: int
    retry_after: int
    seconds: float
    body: str

    def __init__(
        self,
        target: Endpoint | str,
        kind: FaultKind | str,
        *,
        count: int = 1,
        status: int = 503,
        retry_after: int = 1,
        seconds: float = 1.0,
        body: str = "this is not the reply the spec describes",
    ) -> None:
        """Accept plain strings for the enums ("events", "drop"), and refuse values that cannot work."""
        if count < 1:
            raise ValueError("a fault must apply to at least one request")
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        if retry_after < 0 or seconds < 0:
            raise ValueError("retry_after and seconds cannot be negative")
        values = {
            "target": Endpoint(target),
            "kind": FaultKind(kind),
            "count": count,
            "status": status,
            "retry_after": retry_after,
            "seconds": seconds,
            "body": body,
        }
        for name, value in values.items():
            # A frozen dataclass is set up through object.__setattr__, as its generated __init__ does.
            object.__setattr__(self, name, value)


@dataclass(slots=True)
class _QueuedFault:
    fault: Fault
    remaining: int


class FaultPlan:
    """Decides which fault, if any, the next request to an endpoint suffers."""

    def __init__(self) -> None:
        """Start with no faults at all."""
        self._queue: deque[_QueuedFault] = deque()
        self._random_rate = 0.0
        self._random_faults: tuple[Fault, ...] = ()
        # Not for security: a seeded generator makes a soak run reproducible.
        self._rng = random.Random(0)  # noqa: S311

    def inject(self, fault: Fault) -> None:
        """Queue a fault behind those already queued."""
        self._queue.append(_QueuedFault(fault, fault.count))

    def set_random(self, *, rate: float, faults: Sequence[Fault], seed: int) -> None:
        """Give every request to an endpoint named by one of `faults` that chance of suffering one of them."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, got {rate}")
        if rate > 0 and not faults:
            raise ValueError("random faults need at least one fault to choose from")
        self._random_rate = rate
        self._random_faults = tuple(faults)
        self._rng = random.Random(seed)  # noqa: S311

    @property
    def pending(self) -> int:
        """How many requests the queued faults will still affect."""
        return sum(queued.remaining for queued in self._queue)

    def take(self, endpoint: Endpoint) -> Fault | None:
        """The fault the next request to `endpoint` suffers: queued ones first, in order, then random ones."""
        return self._take_queued(endpoint) or self._draw_random(endpoint)

    def _take_queued(self, endpoint: Endpoint) -> Fault | None:
        for queued in self._queue:
            if queued.fault.target is endpoint:
                queued.remaining -= 1
                if queued.remaining == 0:
                    self._queue.remove(queued)
                return queued.fault
        return None

    def _draw_random(self, endpoint: Endpoint) -> Fault | None:
        candidates = [fault for fault in self._random_faults if fault.target is endpoint]
        if self._random_rate <= 0 or not candidates:
            return None
        if self._rng.random() >= self._random_rate:
            return None
        return self._rng.choice(candidates)
