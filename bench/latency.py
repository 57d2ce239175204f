"""Alarm latency: from the motion sensor's state change to the simulator receiving the event, next to a bare POST.

One alarm at a time (each camera in turn, one snapshot each), interleaved with a bare `aiohttp` POST of the very
body the integration sent (new event id), through Home Assistant's own client session with the integration's
token. Both arrival times are taken with `time.perf_counter` inside the simulator's handler (in this process, or
in the simulator's own, which prints them: the same clock on Linux).
"""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from custom_components.chekt.outbox import RetryPolicy

from .home import Home, bench_home
from .measure import Arrivals, BareClient, percentile


async def run(
    *, events: int = 500, cameras: int = 50, external_cloud: bool = False, hass: HomeAssistant | None = None
) -> dict[str, Any]:
    """The latency figures in milliseconds, and their ratios.

    With `external_cloud` the simulator runs in a process of its own, as the real cloud is elsewhere: what the
    integration does after its request has left (the snapshot, the sensors) no longer delays the simulator.
    """
    async with bench_home(
        cameras=cameras, snapshot_count=1, external_cloud=external_cloud, arrivals=external_cloud, hass=hass
    ) as home:
        arrivals = Arrivals(home.cloud)
        token = await home.client.tokens.token()
        bare = BareClient(async_get_clientsession(home.hass), home.cloud, token, RetryPolicy().max_concurrent_requests)
        try:
            for index in range(cameras):  # warm-up, and a body of each camera to copy
                await _ours(home, arrivals, index)
                await _bare(bare, arrivals, index)
            ours: list[float] = []
            floor: list[float] = []
            for n in range(events):
                index = n % cameras
                if n % 2:  # alternate which goes first, so that neither always follows the other
                    floor.append(await _bare(bare, arrivals, index))
                    ours.append(await _ours(home, arrivals, index))
                else:
                    ours.append(await _ours(home, arrivals, index))
                    floor.append(await _bare(bare, arrivals, index))
        finally:
            arrivals.close()
    result: dict[str, Any] = {"events": events, "external_cloud": int(external_cloud)}
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        result[f"ours_{name}_ms"] = percentile(ours, fraction) * 1000
        result[f"bare_{name}_ms"] = percentile(floor, fraction) * 1000
        result[f"ratio_{name}"] = result[f"ours_{name}_ms"] / result[f"bare_{name}_ms"]
    return result


async def _ours(home: Home, arrivals: Arrivals, index: int) -> float:
    """One alarm through Home Assistant and the integration; then its `inactive`, untimed."""
    arrived = arrivals.after(events=1)
    started = time.perf_counter()
    home.trigger(index)
    latency = await arrived - started
    await home.wait_idle()
    cleared = arrivals.after(events=1)
    home.clear(index)
    await cleared
    await home.wait_idle()
    return latency


async def _bare(bare: BareClient, arrivals: Arrivals, index: int) -> float:
    """The same body, POSTed directly."""
    body = bare.fresh(arrivals.bodies[f"CAM{index:03d}"])
    arrived = arrivals.after(events=1)
    started = time.perf_counter()
    await bare.post(body)
    return await arrived - started
