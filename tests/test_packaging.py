"""What is shipped, checked as HACS and Home Assistant read it: manifest, hacs.json, versions, brand images,
translations, the action's description and the blueprints."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import re
import tomllib
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA, async_validate_config_item
from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from PIL import Image
import probatio
import pytest

from custom_components.chekt.api import EventStatus, EventType, KeyProblem
from custom_components.chekt.const import DOMAIN, MAX_SNAPSHOT_COUNT, SERVICE_SEND_EVENT
from custom_components.chekt.repairs import ISSUE_DELIVERY_FAILING, ISSUE_EVENTS_REJECTED, ISSUE_OUTBOX_FULL
from custom_components.chekt.services import SEND_EVENT_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "custom_components" / DOMAIN
BLUEPRINTS = sorted((ROOT / "blueprints" / "automation" / DOMAIN).glob("*.yaml"))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = load_json(COMPONENT / "manifest.json")
    return data


@pytest.fixture(scope="module")
def strings() -> dict[str, Any]:
    data: dict[str, Any] = load_json(COMPONENT / "strings.json")
    return data


@pytest.fixture(scope="module")
def services_yaml() -> dict[str, Any]:
    return load_yaml_dict(str(COMPONENT / "services.yaml"))


def requirement_pins() -> dict[str, str]:
    """`name==version` lines of requirements_test.txt, by lower-case name."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements_test.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("#")[0].strip().split("==")
            pins[name.lower()] = version
    return pins


# -- manifest.json and hacs.json --


def test_manifest_has_what_home_assistant_and_hacs_require(manifest: dict[str, Any]) -> None:
    for key in ("domain", "name", "codeowners", "documentation", "issue_tracker", "version", "iot_class"):
        assert manifest.get(key), key
    assert manifest["domain"] == DOMAIN == COMPONENT.name
    assert manifest["config_flow"] is True
    assert manifest["integration_type"] in {"device", "hub", "service", "helper", "entity", "system", "virtual"}
    assert manifest["iot_class"] in {
        "assumed_state",
        "calculated",
        "cloud_polling",
        "cloud_push",
        "local_polling",
        "local_push",
    }
    assert all(code.startswith("@") for code in manifest["codeowners"])
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    assert manifest["requirements"] == []
    # Custom integrations must carry a version Home Assistant can compare.
    assert AwesomeVersion(manifest["version"]).strategy != "unknown"


async def test_manifest_loads_as_a_custom_integration(hass: HomeAssistant, manifest: dict[str, Any]) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.version == AwesomeVersion(manifest["version"])
    for dependency in manifest.get("dependencies", []):
        assert (await async_get_integration(hass, dependency)).is_built_in, dependency


def test_hacs_json() -> None:
    hacs = load_json(ROOT / "hacs.json")
    allowed = {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
    assert set(hacs) <= allowed
    assert hacs["name"] == "CHeKT"
    # The oldest Home Assistant the integration runs on is the one it is tested with.
    assert hacs["homeassistant"] == ha_version


def test_versions_agree(manifest: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert manifest["version"] == pyproject["project"]["version"]
    pins = requirement_pins()
    # pytest-homeassistant-custom-component pins the Home Assistant these tests run on.
    assert "pytest-homeassistant-custom-component" in pins


async def test_real_home_assistant_stack_matches_core_pins(hass: HomeAssistant) -> None:
    """The packages a real Home Assistant needs (tests/e2e, scripts/develop) are those core pins."""
    pins = requirement_pins()
    for domain in ("frontend", "conversation", "tts", "ffmpeg", "infrared", "radio_frequency"):
        for requirement in (await async_get_integration(hass, domain)).requirements:
            name, version = requirement.split("==")
            assert pins.get(name.lower()) == version, requirement


# -- brand images --


def test_brand_images() -> None:
    with Image.open(COMPONENT / "brand" / "icon.png") as icon:
        assert icon.format == "PNG"
        assert icon.size == (256, 256)
        assert icon.mode == "RGBA"
    with Image.open(COMPONENT / "brand" / "logo.png") as logo:
        assert logo.format == "PNG"
        width, height = logo.size
        # Home Assistant's brand rules: shortest side between 128 and 256 pixels, landscape for a logo.
        assert 128 <= min(width, height) <= 256
        assert width >= height
        assert logo.mode == "RGBA"


# -- translations --


def _python_sources() -> dict[str, str]:
    return {path.stem: path.read_text() for path in COMPONENT.glob("*.py")}


def entity_translation_keys() -> set[tuple[str, str]]:
    """(platform, key) for each `_attr_translation_key = "..."` of an entity platform module."""
    keys = set()
    for module, source in _python_sources().items():
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "_attr_translation_key" for t in node.targets)
                and isinstance(node.value, ast.Constant)
            ):
                keys.add((module, node.value.value))
    return keys


def exception_translation_keys() -> set[str]:
    """Each literal `translation_key="..."` passed to a call (the exceptions the integration raises)."""
    keys = set()
    for source in _python_sources().values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "translation_key" and isinstance(keyword.value, ast.Constant):
                        keys.add(keyword.value.value)
    return keys


def test_english_translations_are_the_strings(strings: dict[str, Any]) -> None:
    assert load_json(COMPONENT / "translations" / "en.json") == strings


def test_entity_translations_both_ways(strings: dict[str, Any]) -> None:
    used = entity_translation_keys()
    assert used
    translated = {(platform, key) for platform, keys in strings["entity"].items() for key in keys}
    assert used == translated
    icons = load_json(COMPONENT / "icons.json")
    assert {(platform, key) for platform, keys in icons["entity"].items() for key in keys} == translated


def test_exception_translations_both_ways(strings: dict[str, Any]) -> None:
    used = exception_translation_keys()
    assert used
    assert used == set(strings["exceptions"])


def test_repair_issue_translations(strings: dict[str, Any]) -> None:
    issues = strings.get("issues", {})
    assert set(issues) == {ISSUE_DELIVERY_FAILING, ISSUE_EVENTS_REJECTED, ISSUE_OUTBOX_FULL}
    assert all(issue["title"] and issue["description"] for issue in issues.values())


def test_config_flow_errors_are_translated(strings: dict[str, Any]) -> None:
    source = (COMPONENT / "config_flow.py").read_text()
    errors = set(strings["config"]["error"])
    used = set(re.findall(r'"(invalid_auth|cannot_connect|unknown|insecure_url|invalid_url)"', source))
    used |= {f"invalid_key_{problem}" for problem in KeyProblem}
    used.add("empty_id")
    assert used <= errors
    for subentry_type in ("camera", "alarm_panel"):
        assert {"empty_id", "already_mapped"} <= set(strings["config_subentries"][subentry_type]["error"])
    assert "stream_not_supported" in strings["config_subentries"]["camera"]["error"]


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in _texts(value)]
    return [node] if isinstance(node, str) else []


def test_no_text_breaks_the_frontends_message_format(strings: dict[str, Any]) -> None:
    """The frontend renders texts as ICU messages: `<word>` is a tag and shows "Translation error: UNCLOSED_TAG"."""
    assert not [text for text in _texts(strings) if re.search(r"<[A-Za-z][^>]*>", text)]


def test_every_form_field_is_described(strings: dict[str, Any]) -> None:
    """Each step's fields have a label and a description (the quality scale asks for data_description)."""
    steps = list(strings["config"]["step"].values()) + list(strings["options"]["step"].values())
    steps += [step for sub in strings["config_subentries"].values() for step in sub["step"].values()]
    for step in steps:
        assert set(step.get("data", {})) == set(step.get("data_description", {})), step["title"]
        for section in step.get("sections", {}).values():
            assert set(section["data"]) == set(section["data_description"])


# -- the action --


def test_services_yaml_matches_the_actions_schema(services_yaml: dict[str, Any], strings: dict[str, Any]) -> None:
    assert set(services_yaml) == {SERVICE_SEND_EVENT}
    fields = services_yaml[SERVICE_SEND_EVENT]["fields"]
    schema_keys = {str(key): key for key in SEND_EVENT_SCHEMA.schema}
    assert set(fields) == set(schema_keys)
    for name, key in schema_keys.items():
        assert bool(fields[name].get("required", False)) == isinstance(key, probatio.Required), name
        if isinstance(key, probatio.Optional) and not callable(key.default) and "default" in fields[name]:
            assert fields[name]["default"] == key.default, name
        selector.validate_selector(fields[name]["selector"])
    assert fields["event_type"]["default"] == EventType.ALARM
    assert fields["event_status"]["default"] == EventStatus.ACTIVE
    assert fields["event_type"]["selector"]["select"]["options"] == [t.value for t in EventType]
    assert fields["event_status"]["selector"]["select"]["options"] == [s.value for s in EventStatus]
    assert fields["snapshot_count"]["selector"]["number"]["max"] == MAX_SNAPSHOT_COUNT
    # Every field is named and described, and every option of a translated selector has its text.
    assert set(strings["services"][SERVICE_SEND_EVENT]["fields"]) == set(fields)
    for name in ("event_type", "event_status"):
        key = fields[name]["selector"]["select"]["translation_key"]
        assert set(strings["selector"][key]["options"]) == set(fields[name]["selector"]["select"]["options"])
    # Every value the selectors offer passes the schema.
    SEND_EVENT_SCHEMA({"camera_entity_id": "camera.front", "event_type": "trouble", "event_status": "inactive"})


# -- blueprints --


def test_blueprints_are_shipped() -> None:
    assert [path.name for path in BLUEPRINTS] == ["door_opened_while_armed.yaml"]


@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda path: path.name)
async def test_blueprint_loads_and_makes_a_valid_automation(hass: HomeAssistant, path: Path) -> None:
    """The blueprint loads with Home Assistant's own machinery, and its automation validates."""
    assert await async_setup_component(hass, "automation", {})
    blueprint = Blueprint(
        load_yaml_dict(str(path)), path=path.name, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    assert blueprint.validate() is None
    assert blueprint.metadata["source_url"].endswith(f"blueprints/automation/{DOMAIN}/{path.name}")
    inputs = {
        "door": "binary_sensor.front_door",
        "alarm_panel": "alarm_control_panel.house",
        "camera": "camera.porch",
    }
    for name, value in inputs.items():
        selector.selector(blueprint.inputs[name]["selector"])(value)
    config = {"id": "test", "use_blueprint": {"path": f"{DOMAIN}/{path.name}", "input": inputs}}
    blueprint_inputs = BlueprintInputs(blueprint, config)
    blueprint_inputs.validate()
    automation = blueprint_inputs.async_substitute()
    assert automation["actions"][0]["action"] == f"{DOMAIN}.{SERVICE_SEND_EVENT}"
    assert automation["actions"][0]["data"]["camera_entity_id"] == "camera.porch"
    assert automation["actions"][0]["data"]["snapshot_count"] == 3
    assert automation["conditions"][0]["state"] == [
        "armed_away",
        "armed_home",
        "armed_night",
        "armed_vacation",
        "armed_custom_bypass",
    ]
    assert await async_validate_config_item(hass, "test", automation) is not None
