"""Time as the outbox sees it. Tests of long outages swap in a faster clock; production uses this one."""

from __future__ import annotations

import asyncio
from datetime import datetime
import time

from homeassistant.util import dt as dt_util


class Clock:
    """Wall time for ages and URL expiry, a monotonic time for waiting, and a way to wait."""

    def now(self) -> datetime:
        """The current UTC time."""
        return dt_util.utcnow()

    def monotonic(self) -> float:
        """Seconds on a clock that never steps back."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        await asyncio.sleep(seconds)
