"""`python -m bench` (or `scripts/bench`): every benchmark, a few times each, and one table of medians.

Each run of a benchmark is a process of its own (a fresh interpreter, a fresh Home Assistant), so that memory
and garbage of one run do not weigh on the next. Ratios are taken within a run (ours and the floor measured side
by side, interleaved) and the table shows the median over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import json
import math
import os
import platform
import subprocess
import sys
import time
from typing import Any

from homeassistant import runner

RESULT_PREFIX = "BENCH-RESULT "


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark and its sizes: full (the figures) and smoke (the test that it still runs)."""

    name: str
    title: str
    full: dict[str, Any]
    smoke: dict[str, Any]
    runs: int = 3


BENCHMARKS = [
    Benchmark("latency", "Alarm latency", {"events": 500, "cameras": 50}, {"events": 6, "cameras": 3}),
    Benchmark(
        "latency_remote",
        "Alarm latency, cloud in its own process",
        {"events": 500, "cameras": 50, "external_cloud": True},
        {"events": 4, "cameras": 2, "external_cloud": True},
    ),
    Benchmark("burst", "Burst", {"cameras": 200, "snapshots": 0, "rounds": 3}, {"cameras": 4, "rounds": 1}),
    Benchmark(
        "burst_media",
        "Burst with snapshots",
        {"cameras": 200, "snapshots": 5, "rounds": 3},
        {"cameras": 3, "snapshots": 2, "rounds": 1},
    ),
    Benchmark("idle", "Idle cost", {"changes": 50_000, "cameras": 200, "pairs": 3}, {"changes": 300, "cameras": 4}),
    Benchmark(
        "memory",
        "Memory",
        {"events": 10_000, "cameras": 200},
        {"events": 12, "cameras": 3, "external_cloud": False},
        runs=1,
    ),
    Benchmark(
        "memory_floor",
        "Memory without CHeKT",
        {"events": 10_000, "cameras": 200, "with_chekt": False},
        {"events": 12, "cameras": 3, "external_cloud": False, "with_chekt": False},
        runs=1,
    ),
]
BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}


def function(name: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The coroutine function of benchmark `name`."""
    from . import burst, idle, latency, memory  # noqa: PLC0415 -- Home Assistant loads only in a worker

    if name == "burst_media":
        return burst.run
    if name == "latency_remote":
        return latency.run
    module = {"latency": latency, "burst": burst, "idle": idle, "memory": memory, "memory_floor": memory}[name]
    run: Callable[..., Awaitable[dict[str, Any]]] = module.run
    return run


# Worker: one run of one benchmark ----------------------------------------------------------------------------


async def _work(name: str, sizes: dict[str, Any]) -> dict[str, Any]:
    runner.configure_event_loop(asyncio.get_running_loop())
    return await function(name)(**sizes)


def work(name: str, sizes: dict[str, Any]) -> None:
    """Run once and print the figures as one JSON line."""
    result = asyncio.run(_work(name, sizes))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# Driver: every benchmark, several runs each ------------------------------------------------------------------


def run_once(name: str, sizes: dict[str, Any]) -> dict[str, Any]:
    """One run in a process of its own."""
    command = [sys.executable, "-m", "bench", "--worker", name, "--sizes", json.dumps(sizes)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return result
    sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-8000:])
    raise RuntimeError(f"benchmark {name} failed (exit status {completed.returncode})")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Figure by figure, the median over the runs."""
    result: dict[str, Any] = {}
    for key in runs[0]:
        values = sorted(run[key] for run in runs)
        result[key] = values[len(values) // 2]
    return result


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _mb(value: float) -> str:
    return f"{value:+.1f} MB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


type Row = tuple[str, str, str, str, str]


def table(results: dict[str, dict[str, Any]], runs: dict[str, int]) -> list[Row]:
    """Rows of (figure, ours, floor, ratio or value, target and whether it is met)."""
    rows: list[Row] = []
    for name, where in (("latency", "simulator on the same loop"), ("latency_remote", "simulator in its own process")):
        if (r := results.get(name)) is None:
            continue
        for p, target in (("p50", 1.5), ("p99", 2.0)):
            ratio = r[f"ratio_{p}"]
            rows.append(
                (
                    (
                        f"1. Alarm latency {p}, state change to the cloud, {where}"
                        f" ({r['events']} alarms x {runs[name]} runs)"
                    ),
                    _ms(r[f"ours_{p}_ms"]),
                    _ms(r[f"bare_{p}_ms"]),
                    f"{ratio:.2f}",
                    f"<= {target}: {_verdict(ratio <= target)}",
                )
            )
    for name in ("burst", "burst_media"):
        if (r := results.get(name)) is not None:
            media = f", {r['snapshots']} snapshots each (uploads and callbacks)" if r["snapshots"] else ""
            rows.append(
                (
                    f"2. Burst: {r['cameras']} cameras at once{media} ({runs[name]} runs)",
                    _ms(r["ours_ms"]),
                    _ms(r["bare_ms"]),
                    f"{r['ratio']:.2f}",
                    f"<= 1.3: {_verdict(r['ratio'] <= 1.3)}",
                )
            )
    for name in ("burst", "burst_media"):
        if (r := results.get(name)) is not None:
            media = f" with {r['snapshots']} snapshots" if r["snapshots"] else ""
            rows.append(
                (
                    (
                        f"3. Loop blocked, longest, in the burst{media} (longest GC pause in it:"
                        f" ours {_ms(r['ours_gc_ms'])}, floor {_ms(r['bare_gc_ms'])})"
                    ),
                    _ms(r["ours_lag_ms"]),
                    _ms(r["bare_lag_ms"]),
                    _ms(r["ours_lag_ms"]),
                    f"< 20 ms: {_verdict(r['ours_lag_ms'] < 20)}",
                )
            )
    if (r := results.get("idle")) is not None:
        rows.append(
            (
                (
                    f"4. Idle: CPU for {r['changes']:,} unmapped state changes, {r['cameras']} cameras mapped"
                    f" ({runs['idle']} runs)"
                ),
                f"{r['ours_cpu_s']:.3f} s",
                f"{r['bare_cpu_s']:.3f} s",
                f"{r['ratio']:.3f}",
                f"<= 1.02: {_verdict(r['ratio'] <= 1.02)}",
            )
        )
    if (r := results.get("memory")) is not None:
        floor = results.get("memory_floor")

        def _floor(key: str) -> str:
            return f"{_mb(floor[key])} (without CHeKT)" if floor is not None else ""

        rows += [
            (
                (
                    f"5. Memory: RSS growth, {r['backlog']:,} events waiting, cloud down, {r['snapshots_on_disk']:,}"
                    f" snapshots on disk (live Python heap {_mb(r['heap_backlog_growth_mb'])})"
                ),
                _mb(r["backlog_growth_mb"]),
                _floor("backlog_growth_mb"),
                _mb(r["backlog_growth_mb"]),
                "",
            ),
            (
                (
                    f"5. Memory: RSS growth after the backlog drained in {r['drain_s']:.0f} s"
                    f" (live Python heap {_mb(r['heap_drained_growth_mb'])})"
                ),
                _mb(r["drained_growth_mb"]),
                _floor("drained_growth_mb"),
                _mb(r["drained_growth_mb"]),
                f"<= 10 MB: {_verdict(r['drained_growth_mb'] <= 10)}",
            ),
            (
                (
                    f"   Loop blocked, longest, while the backlog built up / drained (longest GC pause:"
                    f" {_ms(r['outage_gc_ms'])} / {_ms(r['drain_gc_ms'])})"
                ),
                f"{_ms(r['outage_lag_ms'])} / {_ms(r['drain_lag_ms'])}",
                "",
                "",
                "(no target)",
            ),
        ]
    elif (floor := results.get("memory_floor")) is not None:
        rows.append(
            (
                "5. Memory without CHeKT: RSS growth after the same state changes",
                "",
                _mb(floor["drained_growth_mb"]),
                "",
                "",
            )
        )
    return rows


def render(rows: list[Row]) -> str:
    """A Markdown table."""
    header = ("Figure", "CHeKT integration", "Floor (bare aiohttp)", "Ratio / value", "Target")
    lines = [header, tuple("-" * 3 for _ in header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def machine() -> str:
    """Where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:  # noqa: PTH123
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help="comma-separated benchmarks: " + ", ".join(BY_NAME))
    parser.add_argument("--runs", type=int, help="runs of each benchmark (default: 3; memory 1)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--json", help="write every run's figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work(args.worker, json.loads(args.sizes or "{}"))
        return 0
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    everything: dict[str, list[dict[str, Any]]] = {}
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, int] = {}
    began = time.monotonic()
    for name in names:
        benchmark = BY_NAME[name]
        sizes = benchmark.smoke if args.smoke else benchmark.full
        count = args.runs or benchmark.runs
        runs[name] = count
        everything[name] = []
        for number in range(1, count + 1):
            started = time.monotonic()
            result = run_once(name, sizes)
            everything[name].append(result)
            figures = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
            took = time.monotonic() - started
            print(f"{benchmark.title}, run {number}/{count} ({took:.0f} s): {figures}", flush=True)
        results[name] = median_of(everything[name])
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; {time.monotonic() - began:.0f} s in all")
    print(render(table(results, runs)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as output:  # noqa: PTH123
            json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "runs": everything}, output, indent=2)
    bad = [name for name, result in results.items() if not all(_finite(v) for v in result.values())]
    return 1 if bad else 0


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


if __name__ == "__main__":
    raise SystemExit(main())
