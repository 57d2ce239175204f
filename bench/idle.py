"""Idle cost: CPU time of state changes of entities nobody mapped, with the CHeKT entry loaded and without.

The home is the same in both (cameras, their sensors, the unmapped entities); only the entry is loaded or not.
Blocks with and without alternate (ABBA), so that drift of the machine falls on both alike, with the garbage
collector paused during each; the figure is the fastest block of each kind (on a shared machine every disturbance
only adds time, so the minimum is the stable estimate of the cost), the ratio that of the two.

Like every real home, the bench's has an automation with a state trigger (`automation=True`): Home Assistant then
already dispatches each state change to its trackers (one shared listener, indexed by entity id), and what is
measured is what CHeKT adds to that. In a home without any (`automation=False`), loading CHeKT also installs that
shared listener, a fraction of a microsecond per state change that the next automation would bring anyway.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from typing import Any

from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event

from .home import Home, bench_home
from .measure import median

UNMAPPED = 100
YIELD_EVERY = 100


async def run(
    *,
    changes: int = 50_000,
    cameras: int = 200,
    pairs: int = 10,
    automation: bool = True,
    hass: HomeAssistant | None = None,
) -> dict[str, Any]:
    """CPU seconds per block with and without the integration, and their ratio."""
    async with bench_home(cameras=cameras, load=False, hass=hass) as home:
        remove = (
            async_track_state_change_event(home.hass, ["input_boolean.bench_away"], _automation) if automation else None
        )
        try:
            without, loaded = await _blocks(home, changes, pairs)
        finally:
            if remove is not None:
                remove()
    return {
        "changes": changes,
        "cameras": cameras,
        "ours_cpu_s": min(loaded),
        "bare_cpu_s": min(without),
        "ratio": min(loaded) / min(without),
        "ratio_of_medians": median(loaded) / median(without),
    }


async def _blocks(home: Home, changes: int, pairs: int) -> tuple[list[float], list[float]]:
    entities = [f"sensor.bench_unmapped_{index:03d}" for index in range(UNMAPPED)]
    values = itertools.count()
    for entity_id in entities:
        home.hass.states.async_set(entity_id, str(next(values)))
    await _block(home, entities, values, changes)  # warm-up
    without: list[float] = []
    loaded: list[float] = []
    for pair in range(pairs):
        for with_entry in (False, True) if pair % 2 == 0 else (True, False):
            if with_entry:
                await home.load()
                await asyncio.sleep(0.1)
                await home.hass.async_block_till_done()
                loaded.append(await _block(home, entities, values, changes))
                await home.unload()
            else:
                without.append(await _block(home, entities, values, changes))
    return without, loaded


@callback
def _automation(_event: Event[EventStateChangedData]) -> None:
    """An automation's state trigger (of an entity that never changes here)."""


async def _block(home: Home, entities: list[str], values: itertools.count[int], changes: int) -> float:
    """CPU time of the event loop's thread for `changes` state changes of unmapped entities.

    The loop's thread does all the work of a state change; other threads (Home Assistant saving its registries
    after the entry was loaded) do not belong to it.
    """
    hass = home.hass
    count = len(entities)
    gc.collect()
    gc.disable()  # a collection landing in one block and not the other would outweigh what is measured
    try:
        started = time.thread_time()
        for n in range(changes):
            hass.states.async_set(entities[n % count], str(next(values)))
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        await hass.async_block_till_done()
        return time.thread_time() - started
    finally:
        gc.enable()
