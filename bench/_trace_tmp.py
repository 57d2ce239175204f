"""Trace loop callbacks between trigger and arrival for the latency bench."""
import asyncio, time, collections, sys
from asyncio import events
import bench.latency as lat, cProfile, pstats
PROF = cProfile.Profile()
from bench.home import bench_home
from bench.measure import Arrivals

TRACE = None
orig_run = events.Handle._run
def traced_run(self):
    tr = TRACE
    if tr is None:
        return orig_run(self)
    t0 = time.perf_counter()
    try:
        return orig_run(self)
    finally:
        cb = self._callback
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, asyncio.Task):
            name = "task " + owner.get_coro().__qualname__
        else:
            name = repr(cb)[:150]
        tr.append((t0, time.perf_counter() - t0, name))
events.Handle._run = traced_run

async def main():
    global TRACE
    async with bench_home(cameras=50, snapshot_count=1) as home:
        arrivals = Arrivals(home.cloud)
        for i in range(50):
            await lat._ours(home, arrivals, i)
        agg = collections.defaultdict(lambda: [0, 0.0])
        tot = []; trig = []
        for n in range(200):
            i = n % 50
            TRACE = []
            arrived = arrivals.after(events=1)
            started = time.perf_counter()
            PROF.enable(); home.trigger(i); PROF.disable()
            trig.append(time.perf_counter() - started)
            t_arr = await arrived
            tr = TRACE; TRACE = None
            tot.append(t_arr - started)
            for t0, d, name in tr:
                if t0 < t_arr:
                    import re
                    key = re.sub(r"0x[0-9a-f]+", "", name)
                    key = re.sub(r"<Task[^>]*coro=<([^>]*?)\(\)[^>]*>", r"Task \1", key)
                    agg[key][0] += 1; agg[key][1] += d
            await home.wait_idle()
            cleared = arrivals.after(events=1)
            home.clear(i)
            await cleared
            await home.wait_idle()
        tot.sort()
        trig.sort(); print("trigger p50 ms", trig[100]*1000)
        print("p50 ms", tot[len(tot)//2]*1000)
        for k, (c, d) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:30]:
            print(f"{d/200*1e6:8.1f} us/alarm  {c/200:5.2f}x  {k}")
        arrivals.close()
        pstats.Stats(PROF).sort_stats('cumulative').print_stats(45)

asyncio.run(main())
