"""Burst: every mapped camera fires at once; time until the simulator has every event (and every snapshot).

Next to it, the same bodies POSTed directly (then each snapshot uploaded and confirmed) with the outbox's
concurrency, through Home Assistant's client session. A loop-lag probe runs during both, and so does a watch on
the garbage collector: a full collection of Home Assistant's heap stops the loop too, whoever made the garbage.
Each round starts after a full collection, so that one left over from the round before does not fall into it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from custom_components.chekt.outbox import RetryPolicy

from .home import Home, bench_home
from .measure import Arrivals, BareClient, GcWatch, LoopLagProbe, median


async def run(
    *, cameras: int = 200, snapshots: int = 0, rounds: int = 3, hass: HomeAssistant | None = None
) -> dict[str, Any]:
    """Burst times and loop lag in milliseconds, and the ratio of the times."""
    async with bench_home(cameras=cameras, snapshot_count=snapshots, hass=hass) as home:
        arrivals = Arrivals(home.cloud)
        token = await home.client.tokens.token()
        bare = BareClient(async_get_clientsession(home.hass), home.cloud, token, RetryPolicy().max_concurrent_requests)
        probe = Probes(LoopLagProbe(), GcWatch())
        try:
            await _ours(home, arrivals, probe, snapshots)  # warm-up: connections, caches, the bodies to copy
            await _bare(home, bare, arrivals, probe, snapshots)
            ours: list[tuple[float, float, float]] = []
            floor: list[tuple[float, float, float]] = []
            for round_ in range(rounds):
                if round_ % 2:
                    floor.append(await _bare(home, bare, arrivals, probe, snapshots))
                    ours.append(await _ours(home, arrivals, probe, snapshots))
                else:
                    ours.append(await _ours(home, arrivals, probe, snapshots))
                    floor.append(await _bare(home, bare, arrivals, probe, snapshots))
        finally:
            arrivals.close()
            probe.gc.close()
    return {
        "cameras": cameras,
        "snapshots": snapshots,
        "ours_ms": median([t for t, _, _ in ours]) * 1000,
        "bare_ms": median([t for t, _, _ in floor]) * 1000,
        "ratio": median([o[0] / f[0] for o, f in zip(ours, floor, strict=True)]),
        "ours_lag_ms": max(lag for _, lag, _ in ours) * 1000,
        "bare_lag_ms": max(lag for _, lag, _ in floor) * 1000,
        "ours_gc_ms": max(pause for _, _, pause in ours) * 1000,
        "bare_gc_ms": max(pause for _, _, pause in floor) * 1000,
    }


class Probes:
    """The loop-lag probe and the garbage collector's watch, started and stopped together."""

    def __init__(self, lag: LoopLagProbe, gc_watch: GcWatch) -> None:
        """Both idle."""
        self.lag = lag
        self.gc = gc_watch

    def start(self) -> None:
        """After a full collection (untimed), watch."""
        gc.collect()
        self.gc.start()
        self.lag.start()

    def stop(self) -> tuple[float, float]:
        """The longest loop lag and the longest collector pause, in seconds."""
        return self.lag.stop(), self.gc.stop()


async def _ours(home: Home, arrivals: Arrivals, probe: Probes, snapshots: int) -> tuple[float, float, float]:
    """All alarm sensors go on in the same instant; then off again, untimed."""
    cameras = len(home.alarm_entities)
    done = arrivals.after(events=cameras, callbacks=cameras * snapshots)
    probe.start()
    started = time.perf_counter()
    for index in range(cameras):
        home.trigger(index)
    finished = await done
    await home.wait_idle()
    # The entities are written after the burst (not while events are on their way out): inside the probe's
    # window, so that what they cost the loop is counted.
    await home.wait(lambda: not home.outbox.listeners_behind, 10, "entities refreshed")
    lag, pause = probe.stop()
    cleared = arrivals.after(events=cameras)
    for index in range(cameras):
        home.clear(index)
    await cleared
    await home.wait_idle()
    return finished - started, lag, pause


async def _bare(
    home: Home, bare: BareClient, arrivals: Arrivals, probe: Probes, snapshots: int
) -> tuple[float, float, float]:
    cameras = len(home.alarm_entities)
    bodies = [bare.fresh(arrivals.bodies[f"CAM{index:03d}"]) for index in range(cameras)]
    done = arrivals.after(events=cameras, callbacks=cameras * snapshots)
    probe.start()
    started = time.perf_counter()
    if snapshots:
        await asyncio.gather(*(bare.event_with_media(body, home.image) for body in bodies))
    else:
        await asyncio.gather(*(bare.post(body) for body in bodies))
    finished = await done
    lag, pause = probe.stop()
    return finished - started, lag, pause
