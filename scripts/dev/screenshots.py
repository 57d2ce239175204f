"""The README's screenshots, taken in a real browser from the running demo (`scripts/develop`).

Run by `scripts/screenshots`, which starts a headless Chromium with the DevTools protocol on 127.0.0.1 and passes
its address here (`--cdp`). Playwright drives that browser: it logs in as the demo's dev user, opens the pages a
user sees, and saves PNGs in docs/images/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Locator, Page, async_playwright

from tests.e2e.harness import (
    CAMERA_LAST_EVENT,
    MOTION_SWITCH,
    REPO_ROOT,
    DevUser,
    HassApi,
)

DEV_DIR = REPO_ROOT / ".dev"
VIEWPORT = {"width": 1280, "height": 860}
SETTLE = 1.5  # seconds for animations (dialogs, ripples) to end before a picture


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--cdp", required=True, help="the browser's DevTools address, e.g. http://127.0.0.1:9222")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images", help="where to save the PNGs")
    return parser.parse_args(argv)


async def log_in(page: Page, base_url: str, user: DevUser) -> None:
    """Log in through Home Assistant's login page."""
    await page.goto(base_url)
    await page.locator("input[name=username]").fill(user.username)
    await page.locator("input[name=password]").fill(user.password)
    await page.locator("input[name=password]").press("Enter")
    await page.wait_for_function("() => !location.pathname.startsWith('/auth')", timeout=30_000)
    await page.locator("ha-sidebar").wait_for(timeout=30_000)
    await asyncio.sleep(SETTLE)


async def shoot(page: Page, out: Path, name: str, *, locator: Locator | None = None) -> Path:
    """Save a PNG of the page (or of one element) as `out/name.png`."""
    await asyncio.sleep(SETTLE)
    path = out / f"{name}.png"
    if locator is not None:
        await locator.screenshot(path=str(path))
    else:
        await page.screenshot(path=str(path))
    print(f"  {path.relative_to(REPO_ROOT)}", flush=True)
    return path


async def config_flow_form(page: Page, base_url: str, out: Path) -> None:
    """The first form of the config flow, as "Add integration" → CHeKT opens it."""
    await page.goto(f"{base_url}/config/integrations/dashboard/add?domain=chekt")
    # "Do you want to set up CHeKT?"
    await page.get_by_role("button", name="OK").click(timeout=30_000)
    await page.get_by_text("Connect to CHeKT").first.wait_for(timeout=30_000)
    await shoot(page, out, "config-flow")
    await page.keyboard.press("Escape")


async def camera_subentry_form(page: Page, base_url: str, out: Path) -> None:
    """The "Add camera" form of the integration's page."""
    await page.goto(f"{base_url}/config/integrations/integration/chekt")
    await page.get_by_text("Add camera").first.wait_for(timeout=30_000)
    await page.get_by_text("Add camera").first.click()
    await page.get_by_text("Add a camera").first.wait_for(timeout=30_000)
    await shoot(page, out, "camera-subentry")
    await page.keyboard.press("Escape")


async def integration_page(page: Page, base_url: str, out: Path) -> None:
    """The integration's page: the entry, its cameras and alarm panels."""
    await page.goto(f"{base_url}/config/integrations/integration/chekt")
    await page.get_by_text("Demo camera (DEMO-CAMERA)").first.wait_for(timeout=30_000)
    await shoot(page, out, "integration")


async def account_device_page(page: Page, api: HassApi, base_url: str, out: Path) -> None:
    """The entry's device with its entities: cloud connection, last event, events sent, backlog."""
    devices: list[dict[str, Any]] = await api.websocket({"type": "config/device_registry/list"})
    title = (await api.config_entries("chekt"))[0]["title"]
    account = next(device for device in devices if device["name"] == title)
    await page.goto(f"{base_url}/config/devices/device/{account['id']}")
    await page.get_by_text("Cloud connection").first.wait_for(timeout=30_000)
    await shoot(page, out, "entities")


async def simulator_page(page: Page, api: HassApi, simulator_url: str, out: Path) -> None:
    """The simulator's page after the demo motion sensor raised an alarm (with its snapshots)."""
    before = await api.state(CAMERA_LAST_EVENT)
    await api.call("input_boolean", "turn_on", {"entity_id": MOTION_SWITCH})
    await api.wait_for(CAMERA_LAST_EVENT, lambda state: state is not None and state != before)
    await asyncio.sleep(3)  # all three snapshots
    await api.call("input_boolean", "turn_off", {"entity_id": MOTION_SWITCH})
    await asyncio.sleep(1.5)
    await page.goto(simulator_url)
    await page.locator("img").first.wait_for(timeout=30_000)
    await shoot(page, out, "simulator")


def _report(what: str, text: str, level: str = "error") -> None:
    """Browser-side problems, shown while the screenshots are taken."""
    if level in ("error", "warning"):
        print(f"  browser {what}: {text[:300]}", flush=True)


async def run(args: argparse.Namespace, ready: dict[str, str], user: DevUser) -> None:
    """Take every screenshot."""
    base_url = ready["home_assistant"]
    out: Path = args.out
    async with aiohttp.ClientSession() as http, async_playwright() as playwright:
        api = HassApi(http, base_url)
        await api.login(user)
        browser = await playwright.chromium.connect_over_cdp(args.cdp)
        context = await browser.new_context(viewport=VIEWPORT, locale="en-US", color_scheme="light")
        page = await context.new_page()
        page.on("console", lambda message: _report("console", f"{message.type}: {message.text}", message.type))
        page.on("requestfailed", lambda request: _report("request failed", f"{request.url} {request.failure}"))
        try:
            await log_in(page, base_url, user)
            await config_flow_form(page, base_url, out)
            await camera_subentry_form(page, base_url, out)
            await integration_page(page, base_url, out)
            await simulator_page(page, api, ready["simulator"], out)
            await account_device_page(page, api, base_url, out)
        except Exception:
            # What the browser showed when it went wrong, to see why.
            await page.screenshot(path=str(DEV_DIR / "screenshot-failure.png"))
            print(f"The page at the failure: {DEV_DIR / 'screenshot-failure.png'} ({page.url})", flush=True)
            raise
        finally:
            await context.close()
            await browser.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    ready = json.loads((DEV_DIR / "ready.json").read_text())
    user = DevUser(**json.loads((DEV_DIR / "dev-user.json").read_text()))
    args.out.mkdir(parents=True, exist_ok=True)
    print("Taking screenshots:", flush=True)
    asyncio.run(run(args, ready, user))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
