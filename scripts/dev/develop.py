"""The demo behind `scripts/develop`: the local CHeKT cloud and a real Home Assistant with the integration set up.

Run inside the project's Python environment (`scripts/develop` does that):
    python -m scripts.dev.develop [--port 8123] [--simulator-port 8181] [--config .dev/config]

On the first start it onboards Home Assistant with a dev user, adds the demo camera and a CHeKT entry pointing at
the simulator (with a camera and an alarm panel subentry), all through Home Assistant's own HTTP API. Later starts
log in and keep what is there. Ctrl-C (or SIGTERM) stops Home Assistant, then the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path
import secrets
import signal
import sys

import aiohttp

from tests.e2e.harness import (
    CAMERA_IMAGE,
    MOTION_SWITCH,
    REPO_ROOT,
    ChektAccount,
    DevUser,
    HassApi,
    HassProcess,
    async_add_demo_camera,
    async_configure_chekt,
    camera_caption,
    prepare_config,
    write_camera_image,
)
from tests.simulator import ChektSimulator

DEV_DIR = REPO_ROOT / ".dev"
# The one M2M client the local simulator knows. Not a credential of anything real: the simulator is in-memory,
# listens on 127.0.0.1 only and accepts this client alone.
SIM_CLIENT_ID = "ha-dev"
SIM_AUDIENCE = "https://api.chekt.local/partner-event"
READY_FILE = "ready.json"
# The integrations the onboarding sets up on its own (homeassistant/components/onboarding/views.py) that cannot
# work on this offline demo.
ONBOARDING_EXTRAS = ("google_translate", "met", "radio_browser")
USER_FILE = "dev-user.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant's port (default: %(default)s)")
    parser.add_argument(
        "--simulator-port", type=int, default=8181, help="the CHeKT simulator's port (default: %(default)s)"
    )
    parser.add_argument(
        "--config", type=Path, default=DEV_DIR / "config", help="Home Assistant's config folder (default: .dev/config)"
    )
    return parser.parse_args(argv)


def load_or_create(path: Path, make: dict[str, str]) -> dict[str, str]:
    """JSON kept in .dev/ between runs (the dev user, the simulator client's secret); created on first use."""
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(make, indent=2) + "\n")
    path.chmod(0o600)
    return make


async def refresh_camera(image: Path, stop: asyncio.Event) -> None:
    """Redraw the demo camera's picture every half second, so each snapshot shows when it was taken."""
    while not stop.is_set():
        await asyncio.to_thread(write_camera_image, image, camera_caption())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def set_up_home_assistant(api: HassApi, hass: HassProcess, user: DevUser, account: ChektAccount) -> None:
    """Onboard (first run) or log in, then add what is missing: the demo camera and the CHeKT entry."""
    if await api.onboarding_done():
        await api.login(user)
    else:
        print("Onboarding Home Assistant with the dev user ...", flush=True)
        await api.onboard(user)
    await api.wait_until_running()
    await async_remove_offline_extras(api)
    await async_add_demo_camera(api, hass.config_dir)
    entries = await api.config_entries("chekt")
    if not entries:
        print("Adding the CHeKT integration through its config flow ...", flush=True)
        await async_configure_chekt(api, account)
    elif any(entry["state"] != "loaded" for entry in entries):
        states = ", ".join(f"{entry['title']}: {entry['state']}" for entry in entries)
        print(f"Note: CHeKT entries not loaded ({states}); see {hass.log_path}", flush=True)


async def async_remove_offline_extras(api: HassApi) -> None:
    """Remove what the onboarding adds that cannot work here (it needs the internet or packages not installed)."""
    for domain in ONBOARDING_EXTRAS:
        for entry in await api.config_entries(domain):
            await api.delete(f"/api/config/config_entries/entry/{entry['entry_id']}")


def banner(hass: HassProcess, simulator: ChektSimulator, user: DevUser, user_file: Path) -> str:
    """Where to go; the dev user's password only (the demo's own, on 127.0.0.1), never the simulator's secret."""
    return f"""
CHeKT demo is running.
  Home Assistant:     {hass.base_url}
    user name:        {user.username}
    password:         {user.password}   (kept in {user_file.relative_to(REPO_ROOT)})
  CHeKT simulator:    {simulator.page_url}   (received events with their snapshots)
  Home Assistant log: {hass.log_path}

Try it: turn on "Demo motion (toggle)" ({MOTION_SWITCH}) in Home Assistant and watch the alarm,
its snapshots and callbacks appear on the simulator's page. Arm "Demo alarm" and open "Demo door (toggle)"
for the blueprint's alarm; "Demo sensors offline (toggle)" makes the sensors unavailable (a trouble after 5 s).
Ctrl-C stops everything.
"""


async def run(args: argparse.Namespace) -> int:
    """Start the simulator and Home Assistant, set them up, and wait for Ctrl-C."""
    config_dir: Path = args.config.resolve()
    state_dir = config_dir.parent
    user_data = load_or_create(
        state_dir / USER_FILE, {"name": "Dev", "username": "dev", "password": secrets.token_urlsafe(12)}
    )
    user = DevUser(**user_data)
    sim_secret = load_or_create(state_dir / "simulator-client.json", {"secret": secrets.token_urlsafe(32)})["secret"]
    ready_file = state_dir / READY_FILE
    ready_file.unlink(missing_ok=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    simulator = ChektSimulator(port=args.simulator_port)
    hass = HassProcess(config_dir, args.port)
    try:
        await simulator.start()
    except OSError as err:
        print(f"The CHeKT simulator cannot listen on port {args.simulator_port}: {err}", file=sys.stderr)
        return 1
    simulator.add_client(SIM_CLIENT_ID, secret=sim_secret, audience=SIM_AUDIENCE)
    account = ChektAccount(
        api_url=simulator.base_url,
        token_url=simulator.token_url,
        client_id=SIM_CLIENT_ID,
        secret=sim_secret,
        audience=SIM_AUDIENCE,
    )
    camera_task: asyncio.Task[None] | None = None
    try:
        prepare_config(config_dir, port=args.port, chekt_log_level="debug")
        camera_task = asyncio.create_task(refresh_camera(config_dir / CAMERA_IMAGE, stop))
        print(f"Starting Home Assistant on {hass.base_url} (config: {config_dir}) ...", flush=True)
        start = asyncio.create_task(hass.start())
        await asyncio.wait([start, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            start.cancel()
            return 130
        await start
        async with aiohttp.ClientSession() as http:
            await set_up_home_assistant(HassApi(http, hass.base_url), hass, user, account)
        print(banner(hass, simulator, user, state_dir / USER_FILE), flush=True)
        ready_file.write_text(
            json.dumps({"home_assistant": hass.base_url, "simulator": simulator.page_url}, indent=2) + "\n"
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if not hass.running:
                print(f"Home Assistant exited; see {hass.log_path}", file=sys.stderr)
                return 1
        return 0
    finally:
        stop.set()
        ready_file.unlink(missing_ok=True)
        print("\nStopping Home Assistant ...", flush=True)
        await hass.stop()
        if camera_task is not None:
            await camera_task
        await simulator.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        print("Stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
