"""Memory: resident memory before, with 10,000 events waiting while the cloud is down, and after they drained.

The events wait with their snapshots on disk; the figures are this process's resident memory.

The cloud is a simulator in a process of its own, so that what it keeps (every upload) does not count here.
Each figure is taken after a full garbage collection and `malloc_trim`. Backoff is shortened (at most half a
second) so that the backlog starts draining as soon as the cloud is back; nothing else is changed.
"""

from __future__ import annotations

import asyncio
from functools import partial
import time
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant

from custom_components.chekt.outbox import RetryPolicy
from custom_components.chekt.store import SAVE_DELAY

from .home import bench_home
from .measure import GcWatch, LoopLagProbe, python_heap_bytes, resident_bytes

MB = 1024 * 1024


async def run(
    *,
    events: int = 10_000,
    cameras: int = 200,
    external_cloud: bool = True,
    with_chekt: bool = True,
    hass: HomeAssistant | None = None,
) -> dict[str, Any]:
    """Resident memory growth in MB with the backlog on disk and after it drained; how long draining took.

    Without CHeKT (`with_chekt=False`, the floor): the same home and the same state changes, with the entry
    unloaded after the warm-up, so that what Home Assistant itself keeps of them is known.
    """
    fast_retry = partial(RetryPolicy, initial_delay=0.05, max_delay=0.5)
    with patch("custom_components.chekt.outbox.RetryPolicy", fast_retry):
        async with bench_home(
            cameras=cameras, snapshot_count=1, alarm_domain="event", external_cloud=external_cloud, hass=hass
        ) as home:
            outbox = home.outbox
            probe = LoopLagProbe()
            collector = GcWatch()
            media = outbox._media
            for index in range(cameras):  # warm-up: every camera once, delivered
                home.trigger(index)
            await home.wait_idle(timeout=120)
            if not with_chekt:
                await home.unload()
            start = resident_bytes()
            heap_start = python_heap_bytes()

            await home.cloud.stop()
            taken = home.snapshots_taken + events
            probe.start()
            collector.start()
            for n in range(events):
                home.trigger(n % cameras)
                if n % cameras == cameras - 1:
                    await asyncio.sleep(0.01)  # as events come in a real home: not all in one instant

            def on_disk() -> bool:
                if not with_chekt:
                    return True
                return home.snapshots_taken >= taken and not outbox._images and not outbox.writing_snapshots

            await home.wait(on_disk, 600, "snapshots on disk")
            await asyncio.sleep(SAVE_DELAY + 0.5)  # and the backlog saved
            outage_lag = probe.stop()
            outage_gc = collector.stop()
            backlog = outbox.state.backlog
            snapshots = media.count
            with_backlog = resident_bytes()
            heap_backlog = python_heap_bytes()

            await home.cloud.start()
            probe.start()
            collector.start()
            started = time.monotonic()
            if with_chekt:
                await home.wait_idle(timeout=1200)
            drain_s = time.monotonic() - started
            drain_lag = probe.stop()
            drain_gc = collector.stop()
            collector.close()
            await asyncio.sleep(SAVE_DELAY + 1)  # the last save written, the last files deleted
            drained = resident_bytes()
            heap_drained = python_heap_bytes()
    return {
        "events": events,
        "backlog": backlog,
        "snapshots_on_disk": snapshots,
        "start_mb": start / MB,
        "backlog_growth_mb": (with_backlog - start) / MB,
        "drained_growth_mb": (drained - start) / MB,
        "heap_backlog_growth_mb": (heap_backlog - heap_start) / MB,
        "heap_drained_growth_mb": (heap_drained - heap_start) / MB,
        "drain_s": drain_s,
        "outage_lag_ms": outage_lag * 1000,
        "drain_lag_ms": drain_lag * 1000,
        "outage_gc_ms": outage_gc * 1000,
        "drain_gc_ms": drain_gc * 1000,
    }
