"""Constants of the CHeKT integration. The stored keys are a contract with users' configurations."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "chekt"
LOGGER: Final = logging.getLogger(__package__)

PRODUCTION_API_URL: Final = "https://api.chekt.com"
DEVELOPMENT_API_URL: Final = "https://api.chektdev.com"

# Config entry data.
CONF_API_URL: Final = "api_url"
CONF_TOKEN_URL: Final = "token_url"
CONF_CLIENT_ID: Final = "client_id"
CONF_SIGNING_KEY: Final = "signing_key"
CONF_KEY_ID: Final = "key_id"
CONF_AUDIENCE: Final = "audience"
CONF_API_KEY: Final = "api_key"

# Config entry options.
CONF_SNAPSHOT_INTERVAL: Final = "snapshot_interval"
CONF_TROUBLE_DELAY: Final = "trouble_delay"
CONF_LATE_AFTER: Final = "late_after"
DEFAULT_SNAPSHOT_INTERVAL: Final = 1.0
DEFAULT_TROUBLE_DELAY: Final = 60
# Events delivered later than this (seconds after they happened) are flagged `late` in their payload.
DEFAULT_LATE_AFTER: Final = 300
CONF_SHORT_CLIP_LENGTH: Final = "short_clip_length"
CONF_EVENT_CLIP_MAX: Final = "event_clip_max"
# Seconds of a short clip (after the alarm; plus look-back when the camera's stream is preloaded).
DEFAULT_SHORT_CLIP_LENGTH: Final = 10
# The longest event clip, in seconds: an alarm that stays on longer gets this much.
DEFAULT_EVENT_CLIP_MAX: Final = 120

# Subentry types.
SUBENTRY_CAMERA: Final = "camera"
SUBENTRY_ALARM_PANEL: Final = "alarm_panel"

# Subentry data, shared by both types.
CONF_LOCATION_ID: Final = "location_id"
CONF_CAMERA_ID: Final = "camera_id"
CONF_SIGNAL_MONITORING_CENTER: Final = "signal_monitoring_center"
# Camera subentry data.
CONF_CAMERA_ENTITY_ID: Final = "camera_entity_id"
CONF_RECORDER_ID: Final = "recorder_id"
CONF_ALARM_ENTITY_IDS: Final = "alarm_entity_ids"
CONF_SNAPSHOT_COUNT: Final = "snapshot_count"
CONF_UPLOAD_SHORT_MP4: Final = "upload_short_mp4"
CONF_UPLOAD_EVENT_MP4: Final = "upload_event_mp4"
CONF_TROUBLE_ON_UNAVAILABLE: Final = "trouble_on_unavailable"
# Alarm panel subentry data.
CONF_PANEL_ENTITY_ID: Final = "panel_entity_id"

DEFAULT_SIGNAL_MONITORING_CENTER: Final = True
DEFAULT_SNAPSHOT_COUNT: Final = 1
MAX_SNAPSHOT_COUNT: Final = 10

# The `chekt.send_event` action.
SERVICE_SEND_EVENT: Final = "send_event"
ATTR_EVENT_TYPE: Final = "event_type"
ATTR_EVENT_STATUS: Final = "event_status"
ATTR_PAYLOAD: Final = "payload"


class Environment(StrEnum):
    """Which CHeKT cloud the config flow's first field points at."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"
    CUSTOM = "custom"


ENVIRONMENT_URLS: Final = {
    Environment.PRODUCTION: PRODUCTION_API_URL,
    Environment.DEVELOPMENT: DEVELOPMENT_API_URL,
}
