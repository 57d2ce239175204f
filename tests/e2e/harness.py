"""A real Home Assistant in a subprocess, set up the way a user sets it up: for the end-to-end test and the demo.

- `prepare_config` writes a configuration folder with the demo entities (a motion and a door sensor a user can
  toggle, an alarm panel), links this checkout's integration and blueprints into it, and draws the picture the
  demo camera shows.
- `HassProcess` starts `python -m homeassistant` on 127.0.0.1 and stops it again, cleanly.
- `HassApi` talks to it over its HTTP and WebSocket APIs only: onboarding, login, config flows, subentry flows,
  options flows, states, actions and translations, exactly as the frontend does.
- `async_configure_chekt` adds the demo camera and a CHeKT entry with a camera and an alarm panel subentry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
import ctypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
import io
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import aiohttp
from homeassistant.components.http.config import (
    HTTP_STORAGE_SCHEMA,
    STORAGE_KEY as HTTP_STORAGE_KEY,
    STORAGE_MINOR_VERSION as HTTP_STORAGE_MINOR_VERSION,
    STORAGE_VERSION as HTTP_STORAGE_VERSION,
)
from PIL import Image, ImageDraw, ImageFont

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENT_DIR = REPO_ROOT / "custom_components" / "chekt"
BLUEPRINTS_DIR = REPO_ROOT / "blueprints" / "automation" / "chekt"
DOOR_BLUEPRINT = "chekt/door_opened_while_armed.yaml"

# The demo's entities.
CAMERA = "camera.demo_camera"
MOTION = "binary_sensor.demo_motion"
DOOR = "binary_sensor.demo_door"
PANEL = "alarm_control_panel.demo_alarm"
MOTION_SWITCH = "input_boolean.demo_motion"
DOOR_SWITCH = "input_boolean.demo_door"
OFFLINE_SWITCH = "input_boolean.demo_sensors_offline"
CAMERA_IMAGE = "demo_camera.jpg"
# The "Last event" sensors of the devices the integration makes for the demo camera's and panel's subentries.
CAMERA_LAST_EVENT = "sensor.demo_camera_demo_camera_last_event"
PANEL_LAST_EVENT = "sensor.demo_alarm_demo_panel_last_event"

# The CHeKT ids the demo maps its camera and panel to.
LOCATION_ID = "DEMO-LOCATION"
RECORDER_ID = "DEMO-RECORDER"
CAMERA_ID = "DEMO-CAMERA"
PANEL_CAMERA_ID = "DEMO-PANEL"

CONFIGURATION_YAML = """\
# Written by tests/e2e/harness.py for the CHeKT demo and end-to-end test; rewritten on every start.
homeassistant:
  name: CHeKT demo
  unit_system: metric
  time_zone: UTC
  country: US
  currency: USD
  internal_url: "http://127.0.0.1:{port}"

# The HTTP server's settings (127.0.0.1:{port}) are in .storage/http: since 2026.10 Home Assistant keeps them
# there, takes `http:` from YAML only once and then has the change confirmed in the UI.

logger:
  default: warning
  logs:
    custom_components.chekt: {chekt_log_level}
    homeassistant.components.http.ban: error

# What a user toggles; the sensors below follow them.
input_boolean:
  demo_motion:
    name: Demo motion (toggle)
    icon: mdi:motion-sensor
  demo_door:
    name: Demo door (toggle)
    icon: mdi:door
  demo_sensors_offline:
    name: Demo sensors offline (toggle)
    icon: mdi:lan-disconnect

template:
  - binary_sensor:
      - name: Demo motion
        unique_id: chekt_demo_motion
        device_class: motion
        state: "{{{{ is_state('input_boolean.demo_motion', 'on') }}}}"
        availability: "{{{{ not is_state('input_boolean.demo_sensors_offline', 'on') }}}}"
      - name: Demo door
        unique_id: chekt_demo_door
        device_class: door
        state: "{{{{ is_state('input_boolean.demo_door', 'on') }}}}"
        availability: "{{{{ not is_state('input_boolean.demo_sensors_offline', 'on') }}}}"

alarm_control_panel:
  - platform: manual
    name: Demo alarm
    unique_id: chekt_demo_alarm
    code_arm_required: false
    arming_time: 0
    delay_time: 0
    trigger_time: 600
    disarm_after_trigger: false

automation: !include automations.yaml
"""

AUTOMATIONS_YAML = f"""\
# Written by tests/e2e/harness.py: the shipped blueprint, used as a user would use it.
- id: chekt_demo_door_opened_while_armed
  alias: Door opened while armed (CHeKT blueprint)
  use_blueprint:
    path: {DOOR_BLUEPRINT}
    input:
      door: {DOOR}
      alarm_panel: {PANEL}
      camera: {CAMERA}
      snapshot_count: 2
"""


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def camera_jpeg(caption: str, *, size: tuple[int, int] = (640, 360)) -> bytes:
    """A picture for the demo camera: a simple scene (a door in a wall) with a caption, as a JPEG."""
    width, height = size
    image = Image.new("RGB", size, (46, 64, 83))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, int(height * 0.78), width, height), fill=(90, 98, 104))
    door = (int(width * 0.40), int(height * 0.22), int(width * 0.60), int(height * 0.78))
    draw.rectangle(door, fill=(148, 96, 56), outline=(30, 30, 30), width=3)
    draw.ellipse((door[2] - 22, height // 2 - 6, door[2] - 10, height // 2 + 6), fill=(230, 200, 90))
    font = ImageFont.load_default(size=max(14, height // 14))
    draw.rectangle((0, 0, width, height // 9), fill=(0, 0, 0))
    draw.text((12, 4), caption, fill=(255, 255, 255), font=font)
    output = io.BytesIO()
    image.save(output, format="JPEG", quality=85)
    return output.getvalue()


def write_camera_image(path: Path, caption: str) -> None:
    """Replace the demo camera's picture atomically, so the camera never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_bytes(camera_jpeg(caption))
    partial.replace(path)


def camera_caption(now: datetime | None = None) -> str:
    """What the demo camera shows: its name and the time, so every snapshot differs."""
    now = now or datetime.now(UTC)
    return f"Demo camera  {now:%Y-%m-%d %H:%M:%S} UTC"


def _link(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to `target` (replacing an older link or copy)."""
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise FileExistsError(f"{link} exists and is not a link to {target}; remove it")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=target.is_dir())


def write_http_settings(config_dir: Path, *, port: int) -> None:
    """Listen on 127.0.0.1:`port` only: the HTTP server's stored settings, as the UI would confirm them."""
    stable = dict(HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port}))
    stable |= {"created_at": datetime.now(UTC).isoformat(), "error": None, "error_message": None}
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / HTTP_STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": HTTP_STORAGE_VERSION,
                "minor_version": HTTP_STORAGE_MINOR_VERSION,
                "key": HTTP_STORAGE_KEY,
                "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
            },
            indent=2,
        )
    )


def prepare_config(config_dir: Path, *, port: int, chekt_log_level: str = "info") -> None:
    """Write the demo configuration into `config_dir` (created when missing) for a Home Assistant on `port`.

    The integration and the blueprints are linked, not copied: a change in the checkout is picked up at the
    next start.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    write_http_settings(config_dir, port=port)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(port=port, chekt_log_level=chekt_log_level)
    )
    (config_dir / "automations.yaml").write_text(AUTOMATIONS_YAML)
    _link(config_dir / "custom_components" / "chekt", COMPONENT_DIR)
    _link(config_dir / "blueprints" / "automation" / "chekt", BLUEPRINTS_DIR)
    image = config_dir / CAMERA_IMAGE
    if not image.exists():
        write_camera_image(image, camera_caption())


# Looked up here, in the parent: between fork and exec the child must not load libraries.
try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except OSError, AttributeError:  # pragma: no cover - not Linux
    _PRCTL = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies, so no Home Assistant is left."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


class HassProcess:
    """`python -m homeassistant -c <config_dir>` in its own session, its output in `<config_dir>/hass.log`.

    `--skip-pip`: everything must already be installed (scripts/setup does it); nothing is installed at run time.
    """

    def __init__(self, config_dir: Path, port: int) -> None:
        """Nothing runs before `start()`."""
        self.config_dir = config_dir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = config_dir / "hass.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    async def start(self, *, timeout: float = 90.0) -> None:
        """Start Home Assistant and wait until its HTTP server answers."""
        if self.running:
            return
        # The log of the previous run is kept beside the new one: a restart in a test must not hide its errors.
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.previous"))
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_", "COVERAGE"))}
        with self.log_path.open("wb") as log:
            # Starting returns at once (fork and exec); the start-up is awaited below by polling its HTTP server.
            self._process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter, fixed arguments
                [sys.executable, "-m", "homeassistant", "--config", str(self.config_dir), "--skip-pip"],
                cwd=self.config_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only async-signal-safe work (one prctl call)
            )
        await self._wait_until_answering(timeout)

    async def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if not self.running:
                    raise RuntimeError(
                        f"Home Assistant exited during start-up; see {self.log_path}:\n{self.log_tail()}"
                    )
                # Any answer will do: 401 (no token) says the HTTP server is up.
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.base_url}/api/", timeout=aiohttp.ClientTimeout(total=2)) as reply:
                        if reply.status in (200, 401):
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Home Assistant did not answer within {timeout:g} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    async def stop(self, *, timeout: float = 60.0) -> int | None:
        """Stop Home Assistant the way a user does (SIGTERM: a clean shutdown); SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - a child's exit
                await asyncio.sleep(0.1)
            if process.poll() is None:
                process.kill()
                process.wait()
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        """The end of Home Assistant's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        """Everything Home Assistant wrote in this run."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(frozen=True, slots=True)
class DevUser:
    """The user the onboarding creates."""

    name: str
    username: str
    password: str = field(repr=False)


class HassApiError(Exception):
    """Home Assistant answered an API request with an unexpected status."""


class HassApi:
    """Home Assistant's HTTP API (and its WebSocket API for translations), authenticated as a user."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        """Use `http` for every request to `base_url`; log in with `onboard` or `login` first."""
        self.http = http
        self.base_url = base_url
        self.client_id = f"{base_url}/"
        self._token: str | None = None

    # -- authentication --

    async def onboarding_done(self) -> bool:
        """Whether every onboarding step is done (once it is, Home Assistant no longer offers the API)."""
        async with self.http.get(f"{self.base_url}/api/onboarding") as reply:
            if reply.status == 404:
                return True
            if reply.status != 200:
                raise HassApiError(f"GET /api/onboarding: {reply.status} {await reply.text()}")
            steps = await reply.json()
        return all(step["done"] for step in steps)

    async def onboard(self, user: DevUser) -> None:
        """Complete the onboarding as the frontend does: the user, core config, analytics, integrations."""
        reply = await self._json(
            "POST",
            "/api/onboarding/users",
            auth=False,
            json={
                "name": user.name,
                "username": user.username,
                "password": user.password,
                "client_id": self.client_id,
                "language": "en",
            },
        )
        await self._fetch_token(reply["auth_code"])
        await self._json("POST", "/api/onboarding/core_config")
        await self._json("POST", "/api/onboarding/analytics")
        await self._json(
            "POST",
            "/api/onboarding/integration",
            json={"client_id": self.client_id, "redirect_uri": f"{self.client_id}?auth_callback=1"},
        )

    async def login(self, user: DevUser) -> None:
        """Log in through the login flow, as the login page does."""
        flow = await self._json(
            "POST",
            "/auth/login_flow",
            auth=False,
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.client_id}?auth_callback=1",
            },
        )
        result = await self._json(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            auth=False,
            json={"client_id": self.client_id, "username": user.username, "password": user.password},
        )
        if result.get("type") != "create_entry":
            raise HassApiError(f"login refused: {result.get('errors')}")
        await self._fetch_token(result["result"])

    async def _fetch_token(self, code: str) -> None:
        async with self.http.post(
            f"{self.base_url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
        ) as reply:
            if reply.status != 200:
                raise HassApiError(f"POST /auth/token: {reply.status} {await reply.text()}")
            self._token = (await reply.json())["access_token"]

    async def wait_until_running(self, timeout: float = 90.0) -> None:
        """Wait until Home Assistant has started completely (every integration set up)."""
        deadline = time.monotonic() + timeout
        while (await self._json("GET", "/api/config"))["state"] != "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant was not running within {timeout:g} s")
            await asyncio.sleep(0.2)

    # -- plain requests --

    async def _json(self, method: str, path: str, *, auth: bool = True, json: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        async with self.http.request(method, f"{self.base_url}{path}", json=json, headers=headers) as reply:
            if reply.status not in (200, 201):
                raise HassApiError(f"{method} {path}: {reply.status} {await reply.text()}")
            return await reply.json()

    async def get(self, path: str) -> Any:
        """GET `path`, as JSON."""
        return await self._json("GET", path)

    async def post(self, path: str, json: Any = None) -> Any:
        """POST `json` to `path`; the answer as JSON."""
        return await self._json("POST", path, json=json)

    async def delete(self, path: str) -> Any:
        """DELETE `path`; the answer as JSON."""
        return await self._json("DELETE", path)

    # -- flows (the same paths the frontend uses) --

    async def start_flow(self, handler: str | list[str], **extra: Any) -> dict[str, Any]:
        """Start a config flow (`handler` a domain) and return its first step."""
        result: dict[str, Any] = await self.post("/api/config/config_entries/flow", {"handler": handler, **extra})
        return result

    async def submit_flow(self, flow_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Submit one step of a config flow."""
        result: dict[str, Any] = await self.post(f"/api/config/config_entries/flow/{flow_id}", dict(data))
        return result

    async def start_subentry_flow(self, entry_id: str, subentry_type: str, **extra: Any) -> dict[str, Any]:
        """Start a subentry flow ("Add camera", "Add alarm panel")."""
        result: dict[str, Any] = await self.post(
            "/api/config/config_entries/subentries/flow", {"handler": [entry_id, subentry_type], **extra}
        )
        return result

    async def submit_subentry_flow(self, flow_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Submit one step of a subentry flow."""
        result: dict[str, Any] = await self.post(f"/api/config/config_entries/subentries/flow/{flow_id}", dict(data))
        return result

    async def start_options_flow(self, entry_id: str) -> dict[str, Any]:
        """Open an entry's options."""
        result: dict[str, Any] = await self.post("/api/config/config_entries/options/flow", {"handler": entry_id})
        return result

    async def submit_options_flow(self, flow_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Submit the options form."""
        result: dict[str, Any] = await self.post(f"/api/config/config_entries/options/flow/{flow_id}", dict(data))
        return result

    async def config_entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of `domain`, as the integrations page lists them."""
        entries: list[dict[str, Any]] = await self.get(f"/api/config/config_entries/entry?domain={domain}")
        return entries

    # -- states and actions --

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """The state object of `entity_id`, or None when it has none."""
        async with self.http.get(
            f"{self.base_url}/api/states/{entity_id}", headers={"Authorization": f"Bearer {self._token}"}
        ) as reply:
            if reply.status == 404:
                return None
            if reply.status != 200:
                raise HassApiError(f"GET /api/states/{entity_id}: {reply.status} {await reply.text()}")
            result: dict[str, Any] = await reply.json()
            return result

    async def wait_for(
        self, entity_id: str, predicate: Callable[[dict[str, Any] | None], bool], timeout: float = 15.0
    ) -> dict[str, Any] | None:
        """Wait until the state object of `entity_id` (None when it has none) satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while not predicate(current := await self.state(entity_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{entity_id} is still {current and current['state']!r}")
            await asyncio.sleep(0.1)
        return current

    async def wait_for_state(self, entity_id: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until `entity_id` is in `state`."""
        current = await self.wait_for(entity_id, lambda s: s is not None and s["state"] == state, timeout)
        assert current is not None
        return current

    async def call(self, domain: str, service: str, data: Mapping[str, Any] | None = None) -> Any:
        """Perform an action (a service call)."""
        return await self.post(f"/api/services/{domain}/{service}", dict(data or {}))

    async def call_with_response(self, domain: str, service: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Perform an action and return its response data."""
        result = await self.post(f"/api/services/{domain}/{service}?return_response", dict(data))
        response: dict[str, Any] = result["service_response"]
        return response

    # -- WebSocket --

    async def websocket(self, message: Mapping[str, Any]) -> Any:
        """Send one command over the WebSocket API and return its result."""
        async with self.http.ws_connect(f"{self.base_url}/api/websocket") as ws:
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json({"type": "auth", "access_token": self._token})
            if (reply := await ws.receive_json())["type"] != "auth_ok":
                raise HassApiError(f"WebSocket authentication failed: {reply}")
            await ws.send_json({"id": 1, **message})
            while True:
                reply = await ws.receive_json()
                if reply.get("id") == 1 and reply.get("type") == "result":
                    break
        if not reply["success"]:
            raise HassApiError(f"{message['type']}: {reply['error']}")
        return reply["result"]

    async def translations(self, category: str, integration: str) -> dict[str, str]:
        """The English texts of `integration` in `category`, as the frontend loads them to render a form."""
        result = await self.websocket(
            {"type": "frontend/get_translations", "language": "en", "category": category, "integration": [integration]}
        )
        resources: dict[str, str] = result["resources"]
        return resources


@dataclass(frozen=True, slots=True, kw_only=True)
class ChektAccount:
    """What the CHeKT config flow is given: the simulator's URLs and one client registered with it."""

    api_url: str
    token_url: str
    client_id: str
    secret: str = field(repr=False)
    audience: str

    def user_step(self) -> dict[str, Any]:
        """The first form of the config flow, filled in for a custom (local) CHeKT cloud."""
        return {
            "environment": "custom",
            "token_url": self.token_url,
            "client_id": self.client_id,
            "signing_key": self.secret,
            "advanced": {"audience": self.audience},
        }


def camera_mapping(**overrides: Any) -> dict[str, Any]:
    """The "Add camera" form for the demo camera, alarmed by the demo motion sensor."""
    return {
        "camera_entity_id": CAMERA,
        "location_id": LOCATION_ID,
        "camera_id": CAMERA_ID,
        "recorder_id": RECORDER_ID,
        "alarm_entity_ids": [MOTION],
        "signal_monitoring_center": True,
        "snapshot_count": 3,
        "upload_short_mp4": False,
        "upload_event_mp4": False,
        "trouble_on_unavailable": True,
    } | overrides


def panel_mapping(**overrides: Any) -> dict[str, Any]:
    """The "Add alarm panel" form for the demo alarm panel."""
    return {
        "panel_entity_id": PANEL,
        "location_id": LOCATION_ID,
        "camera_id": PANEL_CAMERA_ID,
        "signal_monitoring_center": True,
    } | overrides


def expect(result: Mapping[str, Any], result_type: str, **fields: Any) -> None:
    """Fail with the whole flow result when it is not what the next step needs."""
    if result.get("type") != result_type or any(result.get(key) != value for key, value in fields.items()):
        raise HassApiError(f"expected a {result_type} {fields or ''}, got {dict(result)}")


async def async_add_demo_camera(api: HassApi, config_dir: Path) -> None:
    """Add the demo camera (a `local_file` camera showing `demo_camera.jpg`) through its config flow."""
    if any(entry["title"] == "Demo camera" for entry in await api.config_entries("local_file")):
        return
    step = await api.start_flow("local_file")
    expect(step, "form", step_id="user")
    done = await api.submit_flow(step["flow_id"], {"name": "Demo camera", "file_path": str(config_dir / CAMERA_IMAGE)})
    expect(done, "create_entry")
    await api.wait_for_state(CAMERA, "idle")


async def async_configure_chekt(
    api: HassApi, account: ChektAccount, *, snapshot_interval: float = 0.5, trouble_delay: int = 5
) -> str:
    """Add a CHeKT entry through the config flow, its options, and the demo camera and panel subentries.

    Returns the entry id.
    """
    step = await api.start_flow("chekt")
    expect(step, "form", step_id="user")
    step = await api.submit_flow(step["flow_id"], account.user_step())
    expect(step, "form", step_id="custom_url")
    done = await api.submit_flow(step["flow_id"], {"api_url": account.api_url})
    expect(done, "create_entry")
    entry_id: str = done["result"]["entry_id"]
    options = await api.start_options_flow(entry_id)
    expect(options, "form", step_id="init")
    expect(
        await api.submit_options_flow(
            options["flow_id"],
            {"snapshot_interval": snapshot_interval, "trouble_delay": trouble_delay, "late_after": 300},
        ),
        "create_entry",
    )
    for subentry_type, data in (("camera", camera_mapping()), ("alarm_panel", panel_mapping())):
        step = await api.start_subentry_flow(entry_id, subentry_type)
        expect(step, "form", step_id="user")
        expect(await api.submit_subentry_flow(step["flow_id"], data), "create_entry")
    await async_settle_entry(api, entry_id)
    return entry_id


async def async_settle_entry(api: HassApi, entry_id: str) -> None:
    """Wait for the reloads that changes of an entry scheduled, by asking for one more and waiting for it.

    Each change (options, a subentry) schedules a reload that takes the entry's setup lock at once; a reload
    asked for afterwards (the integration page's "Reload") queues behind them on that lock.
    """
    await api.post(f"/api/config/config_entries/entry/{entry_id}/reload")
    entries = await api.config_entries("chekt")
    state = next(entry["state"] for entry in entries if entry["entry_id"] == entry_id)
    if state != "loaded":
        raise HassApiError(f"the CHeKT entry is {state} after a reload")
