"""Strict validation of the event body against the field table of the Partner Event API spec v0.8."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
import json
from typing import Any

API_VERSION = "1.0"
EVENT_TYPES = ("alarm", "trouble", "arming")
EVENT_STATUSES = ("active", "inactive")
MAX_SNAPSHOTS = 10


class BodyError(ValueError):
    """The body is not what the spec allows; the message names the field and says what is wrong."""


class JsonType(Enum):
    """The JSON types the spec's table uses: how a message names each, and the Python type it parses to."""

    STRING = ("a string", str)
    BOOLEAN = ("a boolean", bool)
    INTEGER = ("an integer", int)
    OBJECT = ("an object", dict)

    def __init__(self, label: str, python_type: type) -> None:
        """Unpack the member's value."""
        self.label = label
        self.python_type = python_type

    def matches(self, value: object) -> bool:
        """Whether `value` is of this type; a boolean is not an integer and an integer is not a boolean."""
        # Python's bool is a subclass of int; JSON's true/false are not numbers.
        if isinstance(value, bool) and self is not JsonType.BOOLEAN:
            return False
        return isinstance(value, self.python_type)


# Order matters: bool is a subclass of int, so it must be named before int.
_JSON_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def describe_json_type(value: object) -> str:
    """How a message names the JSON type of a parsed value."""
    for python_type, name in _JSON_TYPE_NAMES:
        if isinstance(value, python_type):
            return name
    return "null"


def _non_empty(value: str) -> str | None:
    return "must not be empty" if value == "" else None


def _version(value: str) -> str | None:
    return None if value == API_VERSION else f'unsupported version {value!r}; expected "{API_VERSION}"'


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else f"unknown {what} {value!r}; expected one of {', '.join(allowed)}"

    return check


def _iso_time(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"not an ISO 8601 time: {value!r}"
    if moment.tzinfo is None:
        return f"ISO 8601 time without a timezone: {value!r}"
    return None


def _snapshot_count(value: int) -> str | None:
    return None if 0 <= value <= MAX_SNAPSHOTS else f"must be within 0..{MAX_SNAPSHOTS}, got {value}"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One row of the spec's request table, with the value check the simulator adds to the type check."""

    name: str
    type: JsonType
    required: bool = True
    check: Callable[[Any], str | None] | None = None


EVENT_FIELDS: tuple[FieldRule, ...] = (
    FieldRule("version", JsonType.STRING, check=_version),
    FieldRule("location_id", JsonType.STRING, check=_non_empty),
    FieldRule("recorder_id", JsonType.STRING, required=False, check=_non_empty),
    FieldRule("camera_id", JsonType.STRING, check=_non_empty),
    FieldRule("event_id", JsonType.STRING, check=_non_empty),
    FieldRule("event_type", JsonType.STRING, check=_one_of(EVENT_TYPES, "event type")),
    FieldRule("event_status", JsonType.STRING, check=_one_of(EVENT_STATUSES, "event status")),
    FieldRule("event_time", JsonType.STRING, check=_iso_time),
    FieldRule("sent_at", JsonType.STRING, check=_iso_time),
    FieldRule("should_signal_to_monitoring_center", JsonType.BOOLEAN),
    FieldRule("upload_snapshot_count", JsonType.INTEGER, check=_snapshot_count),
    FieldRule("upload_short_mp4", JsonType.BOOLEAN),
    FieldRule("upload_event_mp4", JsonType.BOOLEAN),
    FieldRule("payload", JsonType.OBJECT),
)
KNOWN_FIELDS = frozenset(rule.name for rule in EVENT_FIELDS)


@dataclass(frozen=True, slots=True)
class EventBody:
    """The fields of a valid event body that the simulator acts on."""

    event_id: str
    location_id: str
    camera_id: str
    event_type: str
    event_status: str
    upload_snapshot_count: int
    upload_short_mp4: bool
    upload_event_mp4: bool


def parse_json(raw: bytes) -> Any:
    """Parse strictly: no NaN/Infinity, no repeated keys, UTF-8 only."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as err:
        raise BodyError("body: not UTF-8") from err
    except json.JSONDecodeError as err:
        raise BodyError(f"body: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from err


def _refuse_constant(name: str) -> Any:
    raise BodyError(f"body: {name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BodyError(f"{key}: appears more than once")
        result[key] = value
    return result


def validate_event(body: Any) -> EventBody:
    """The event body checked field by field; the first problem found is raised as a BodyError."""
    if not isinstance(body, dict):
        raise BodyError(f"body: expected a JSON object, got {describe_json_type(body)}")
    for rule in EVENT_FIELDS:
        _check_field(rule, body)
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise BodyError(f"{unknown[0]}: unknown field")
    return EventBody(
        event_id=body["event_id"],
        location_id=body["location_id"],
        camera_id=body["camera_id"],
        event_type=body["event_type"],
        event_status=body["event_status"],
        upload_snapshot_count=body["upload_snapshot_count"],
        upload_short_mp4=body["upload_short_mp4"],
        upload_event_mp4=body["upload_event_mp4"],
    )


def _check_field(rule: FieldRule, body: dict[str, Any]) -> None:
    if rule.name not in body:
        if rule.required:
            raise BodyError(f"{rule.name}: missing required field")
        return
    value = body[rule.name]
    if not rule.type.matches(value):
        raise BodyError(f"{rule.name}: expected {rule.type.label}, got {describe_json_type(value)}")
    problem = rule.check(value) if rule.check else None
    if problem:
        raise BodyError(f"{rule.name}: {problem}")
