"""Run the simulator on its own for the demo: `python -m tests.simulator --client-id demo --secret ...`."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import signal
import sys
import time

from .app import ChektSimulator
from .records import CallbackRecord, EventRecord, UploadRecord

DEFAULT_AUDIENCE = "https://api.chekt.local/partner-event"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; a secret or a public key file (or both for two clients) must be given."""
    parser = argparse.ArgumentParser(prog="python -m tests.simulator", description="Local CHeKT cloud simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8181, help="port to listen on, 0 for any (default: %(default)s)")
    parser.add_argument("--client-id", required=True, help="the M2M client id to register")
    parser.add_argument("--secret", help="shared secret for HS256 assertions")
    parser.add_argument("--public-key", type=Path, help="PEM public key file for RS256/ES256 assertions")
    parser.add_argument("--key-id", help="kid the assertion header must carry")
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE, help="audience the token request must name")
    parser.add_argument("--api-key", help="X-API-KEY the event requests must carry")
    parser.add_argument(
        "--disarmed",
        action="append",
        default=[],
        metavar="LOCATION_ID",
        help="location whose events are discarded as disarmed (repeatable)",
    )
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument(
        "--arrivals",
        action="store_true",
        help="print 'arrival <time.perf_counter()> <body>' for each accepted event (benchmarks time them)",
    )
    args = parser.parse_args(argv)
    if args.secret is None and args.public_key is None:
        parser.error("give --secret or --public-key")
    if args.secret is not None and args.public_key is not None:
        parser.error("give only one of --secret and --public-key")
    return args


def build_simulator(args: argparse.Namespace) -> ChektSimulator:
    """A simulator configured from the command line."""
    simulator = ChektSimulator(host=args.host, port=args.port, token_ttl=args.token_ttl)
    public_key = args.public_key.read_text() if args.public_key is not None else None
    simulator.add_client(
        args.client_id,
        secret=args.secret,
        public_key_pem=public_key,
        key_id=args.key_id,
        audience=args.audience,
        api_key=args.api_key,
    )
    simulator.disarmed_locations.update(args.disarmed)
    if args.arrivals:
        simulator.add_listener(print_arrival)
    return simulator


def print_arrival(record: EventRecord | UploadRecord | CallbackRecord) -> None:
    """One line per accepted event: when it arrived (`time.perf_counter`, the same clock in every process on
    Linux) and its body, so that a benchmark in another process can time it.
    """
    arrived = time.perf_counter()
    if isinstance(record, EventRecord) and record.status == 201:
        sys.stdout.write(f"arrival {arrived!r} {json.dumps(record.body)}\n")
        sys.stdout.flush()


def describe(simulator: ChektSimulator, audience: str) -> str:
    """What to configure the integration with; deliberately no secret."""
    return (
        f"CHeKT simulator listening\n"
        f"  api_url:   {simulator.base_url}\n"
        f"  token_url: {simulator.token_url}\n"
        f"  audience:  {audience}\n"
        f"  page:      {simulator.page_url}\n"
        f"Ctrl-C to stop.\n"
    )


async def serve(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or until `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = build_simulator(args)
    try:
        async with simulator:
            sys.stdout.write(describe(simulator, args.audience))
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    sys.stdout.write("CHeKT simulator stopped.\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
