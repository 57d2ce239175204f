"""Config flow of the CHeKT integration.

One config entry per CHeKT M2M application (its credentials, tested by fetching a token), its options,
reauth and reconfigure, and two kinds of subentries: the cameras and the alarm panels mapped to CHeKT ids.

What is stored in a config entry's `data` is flat, whatever the form looks like: `api_url`, `token_url`,
`client_id`, `signing_key`, and `key_id`, `audience`, `api_key` only when they are not empty (an absent key
means "not used"; `connection.async_create_client` reads them with `.get(...) or None`). Ids, URLs and keys
are stored trimmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, override

from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import ATTR_FRIENDLY_NAME, ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio
from yarl import URL

from .api import (
    ChektAuthError,
    ChektConnectionError,
    ChektKeyError,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    ChektResponseError,
    ChektServerError,
    ChektTimeoutError,
    ChektUrlError,
)
from .connection import async_create_client
from .const import (
    CONF_ALARM_ENTITY_IDS,
    CONF_API_KEY,
    CONF_API_URL,
    CONF_AUDIENCE,
    CONF_CAMERA_ENTITY_ID,
    CONF_CAMERA_ID,
    CONF_CLIENT_ID,
    CONF_EVENT_CLIP_MAX,
    CONF_KEY_ID,
    CONF_LATE_AFTER,
    CONF_LOCATION_ID,
    CONF_PANEL_ENTITY_ID,
    CONF_RECORDER_ID,
    CONF_SHORT_CLIP_LENGTH,
    CONF_SIGNAL_MONITORING_CENTER,
    CONF_SIGNING_KEY,
    CONF_SNAPSHOT_COUNT,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    CONF_TROUBLE_ON_UNAVAILABLE,
    CONF_UPLOAD_EVENT_MP4,
    CONF_UPLOAD_SHORT_MP4,
    DEFAULT_EVENT_CLIP_MAX,
    DEFAULT_LATE_AFTER,
    DEFAULT_SHORT_CLIP_LENGTH,
    DEFAULT_SIGNAL_MONITORING_CENTER,
    DEFAULT_SNAPSHOT_COUNT,
    DEFAULT_SNAPSHOT_INTERVAL,
    DEFAULT_TROUBLE_DELAY,
    DOMAIN,
    ENVIRONMENT_URLS,
    LOGGER,
    MAX_SNAPSHOT_COUNT,
    SUBENTRY_ALARM_PANEL,
    SUBENTRY_CAMERA,
    Environment,
)

# Form-only keys: never stored.
CONF_ENVIRONMENT: Final = "environment"
SECTION_ADVANCED: Final = "advanced"

# The optional credentials, shown in the collapsed "advanced" section and stored flat when not empty.
ADVANCED_KEYS: Final = (CONF_KEY_ID, CONF_AUDIENCE, CONF_API_KEY)

MIN_SNAPSHOT_INTERVAL: Final = 0.2
MAX_SNAPSHOT_INTERVAL: Final = 10.0
MAX_TROUBLE_DELAY: Final = 3600
MIN_LATE_AFTER: Final = 30
MAX_LATE_AFTER: Final = 86400
MIN_SHORT_CLIP_LENGTH: Final = 2
MAX_SHORT_CLIP_LENGTH: Final = 60
MIN_EVENT_CLIP_MAX: Final = 10
MAX_EVENT_CLIP_MAX: Final = 600

# Error keys (translated in strings.json under config.error / config_subentries.<type>.error).
ERROR_EMPTY_ID: Final = "empty_id"
ERROR_ALREADY_MAPPED: Final = "already_mapped"
ERROR_STREAM_NOT_SUPPORTED: Final = "stream_not_supported"

# Everything that means "the cloud could not be asked, or answered nonsense": worth trying again later.
_CANNOT_CONNECT_ERRORS: Final = (
    ChektConnectionError,
    ChektTimeoutError,
    ChektServerError,
    ChektRateLimitedError,
    ChektRequestRejectedError,
    ChektResponseError,
)

_URL_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_TEXT_SELECTOR: Final = TextSelector()
# A PEM private key is several lines: it needs a multi-line field, and a multi-line field cannot be of the
# password type (a password input is a single line and would swallow the line breaks of a pasted PEM).
# The key is therefore visible while it is pasted; it is never shown again from storage (reconfigure leaves
# the field empty to keep the stored key) and never logged.
_SIGNING_KEY_SELECTOR: Final = TextSelector(TextSelectorConfig(multiline=True))
_PASSWORD_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_ENVIRONMENT_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=[environment.value for environment in Environment],
        mode=SelectSelectorMode.DROPDOWN,
        translation_key=CONF_ENVIRONMENT,
    )
)

_ADVANCED_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(CONF_KEY_ID): _TEXT_SELECTOR,
        probatio.Optional(CONF_AUDIENCE): _TEXT_SELECTOR,
        probatio.Optional(CONF_API_KEY): _PASSWORD_SELECTOR,
    }
)


def _credentials_schema(*, reconfigure: bool) -> probatio.Schema:
    """The account form; on reconfigure an empty signing key keeps the stored one."""
    signing_key = probatio.Optional(CONF_SIGNING_KEY) if reconfigure else probatio.Required(CONF_SIGNING_KEY)
    return probatio.Schema(
        {
            probatio.Required(CONF_ENVIRONMENT, default=Environment.PRODUCTION.value): _ENVIRONMENT_SELECTOR,
            probatio.Required(CONF_TOKEN_URL): _URL_SELECTOR,
            probatio.Required(CONF_CLIENT_ID): _TEXT_SELECTOR,
            signing_key: _SIGNING_KEY_SELECTOR,
            probatio.Required(SECTION_ADVANCED): section(_ADVANCED_SCHEMA, {"collapsed": True}),
        }
    )


CUSTOM_URL_SCHEMA: Final = probatio.Schema({probatio.Required(CONF_API_URL): _URL_SELECTOR})

REAUTH_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(CONF_SIGNING_KEY): _SIGNING_KEY_SELECTOR,
        probatio.Optional(CONF_KEY_ID): _TEXT_SELECTOR,
    }
)
REAUTH_FIELDS: Final = frozenset({CONF_SIGNING_KEY, CONF_KEY_ID})

OPTIONS_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(CONF_SNAPSHOT_INTERVAL, default=DEFAULT_SNAPSHOT_INTERVAL): NumberSelector(
            NumberSelectorConfig(
                min=MIN_SNAPSHOT_INTERVAL,
                max=MAX_SNAPSHOT_INTERVAL,
                step=0.1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
        probatio.Optional(CONF_TROUBLE_DELAY, default=DEFAULT_TROUBLE_DELAY): NumberSelector(
            NumberSelectorConfig(
                min=0, max=MAX_TROUBLE_DELAY, step=1, unit_of_measurement="s", mode=NumberSelectorMode.BOX
            )
        ),
        probatio.Optional(CONF_LATE_AFTER, default=DEFAULT_LATE_AFTER): NumberSelector(
            NumberSelectorConfig(
                min=MIN_LATE_AFTER, max=MAX_LATE_AFTER, step=1, unit_of_measurement="s", mode=NumberSelectorMode.BOX
            )
        ),
        probatio.Optional(CONF_SHORT_CLIP_LENGTH, default=DEFAULT_SHORT_CLIP_LENGTH): NumberSelector(
            NumberSelectorConfig(
                min=MIN_SHORT_CLIP_LENGTH,
                max=MAX_SHORT_CLIP_LENGTH,
                step=1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
        probatio.Optional(CONF_EVENT_CLIP_MAX, default=DEFAULT_EVENT_CLIP_MAX): NumberSelector(
            NumberSelectorConfig(
                min=MIN_EVENT_CLIP_MAX,
                max=MAX_EVENT_CLIP_MAX,
                step=1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
    }
)

# Alarm entities: every binary sensor and event entity, with no device-class filter. Many sensors that should
# raise an alarm have no device class at all (template, MQTT, DIY and a good share of Zigbee sensors), and a
# filter would hide them from the list; the user picks deliberately which entities alarm a camera.
ALARM_ENTITY_DOMAINS: Final = ["binary_sensor", "event"]

CAMERA_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(CONF_CAMERA_ENTITY_ID): EntitySelector(EntitySelectorConfig(domain="camera")),
        probatio.Required(CONF_LOCATION_ID): _TEXT_SELECTOR,
        probatio.Required(CONF_CAMERA_ID): _TEXT_SELECTOR,
        probatio.Optional(CONF_RECORDER_ID): _TEXT_SELECTOR,
        probatio.Optional(CONF_ALARM_ENTITY_IDS, default=[]): EntitySelector(
            EntitySelectorConfig(domain=ALARM_ENTITY_DOMAINS, multiple=True)
        ),
        probatio.Optional(CONF_SIGNAL_MONITORING_CENTER, default=DEFAULT_SIGNAL_MONITORING_CENTER): BooleanSelector(),
        probatio.Optional(CONF_SNAPSHOT_COUNT, default=DEFAULT_SNAPSHOT_COUNT): NumberSelector(
            NumberSelectorConfig(min=0, max=MAX_SNAPSHOT_COUNT, step=1, mode=NumberSelectorMode.BOX)
        ),
        probatio.Optional(CONF_UPLOAD_SHORT_MP4, default=False): BooleanSelector(),
        probatio.Optional(CONF_UPLOAD_EVENT_MP4, default=False): BooleanSelector(),
        probatio.Optional(CONF_TROUBLE_ON_UNAVAILABLE, default=True): BooleanSelector(),
    }
)

ALARM_PANEL_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(CONF_PANEL_ENTITY_ID): EntitySelector(EntitySelectorConfig(domain="alarm_control_panel")),
        probatio.Required(CONF_LOCATION_ID): _TEXT_SELECTOR,
        probatio.Required(CONF_CAMERA_ID): _TEXT_SELECTOR,
        probatio.Optional(CONF_SIGNAL_MONITORING_CENTER, default=DEFAULT_SIGNAL_MONITORING_CENTER): BooleanSelector(),
    }
)


async def _async_test_credentials(hass: HomeAssistant, data: Mapping[str, Any]) -> dict[str, str]:
    """Fetch a token with `data`; the errors to show, keyed by the field they concern or "base"."""
    try:
        client = await async_create_client(hass, data)
        await client.authenticate()
    except ChektKeyError as err:
        return {CONF_SIGNING_KEY: f"invalid_key_{err.problem}"}
    except ChektUrlError as err:
        return {err.field: "insecure_url" if err.insecure else "invalid_url"}
    except ChektAuthError:
        return {"base": "invalid_auth"}
    except _CANNOT_CONNECT_ERRORS as err:
        # The client's messages never carry a credential.
        LOGGER.debug("Cannot fetch a CHeKT token: %s", err)
        return {"base": "cannot_connect"}
    except Exception:  # noqa: BLE001 - the flow must show an error, whatever went wrong
        # Only the traceback: the entered data holds secrets and is never logged.
        LOGGER.exception("Unexpected error while testing the CHeKT credentials")
        return {"base": "unknown"}
    return {}


def _unique_id(data: Mapping[str, Any]) -> str:
    """`<client id>@<token URL>`, the URL with lower-case scheme and host, no default port, no trailing slash.

    Called only after the URL passed the client's validation.
    """
    token_url = URL(data[CONF_TOKEN_URL])
    token_url = token_url.with_path(token_url.path.rstrip("/"))
    return f"{data[CONF_CLIENT_ID]}@{token_url}"


def _environment_of(api_url: str) -> Environment:
    """Which choice of the environment dropdown a stored API URL corresponds to."""
    known = {url: environment for environment, url in ENVIRONMENT_URLS.items()}
    return known.get(api_url.rstrip("/"), Environment.CUSTOM)


def _credentials_from_form(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The account form flattened into entry data (without `api_url`); empty optional fields are left out."""
    advanced: Mapping[str, Any] = user_input.get(SECTION_ADVANCED, {})
    data: dict[str, Any] = {
        CONF_TOKEN_URL: user_input[CONF_TOKEN_URL].strip(),
        CONF_CLIENT_ID: user_input[CONF_CLIENT_ID].strip(),
        CONF_SIGNING_KEY: user_input.get(CONF_SIGNING_KEY, "").strip(),
    }
    data.update({key: value for key in ADVANCED_KEYS if (value := advanced.get(key, "").strip())})
    return data


def _form_from_credentials(data: Mapping[str, Any]) -> dict[str, Any]:
    """The account form's values for stored data; the signing key is left out (never shown from storage)."""
    return {
        CONF_ENVIRONMENT: _environment_of(data[CONF_API_URL]).value,
        CONF_TOKEN_URL: data[CONF_TOKEN_URL],
        CONF_CLIENT_ID: data[CONF_CLIENT_ID],
        SECTION_ADVANCED: {key: data[key] for key in ADVANCED_KEYS if key in data},
    }


class ChektConfigFlow(ConfigFlow, domain=DOMAIN):
    """The CHeKT account: user, custom URL, reauth and reconfigure steps."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Nothing entered yet."""
        self._form_input: dict[str, Any] = {}
        self._credentials: dict[str, Any] = {}
        self._custom_api_url = ""

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> ChektOptionsFlow:
        """The options flow (it reads its entry from `self.config_entry`)."""
        return ChektOptionsFlow()

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(cls, config_entry: ConfigEntry) -> dict[str, type[ConfigSubentryFlow]]:
        """Cameras and alarm panels are mapped as subentries."""
        return {
            SUBENTRY_CAMERA: CameraSubentryFlowHandler,
            SUBENTRY_ALARM_PANEL: AlarmPanelSubentryFlowHandler,
        }

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The account: environment, token URL, client id, signing key, and the advanced options."""
        if user_input is None:
            return self._show_credentials_form()
        return await self._async_credentials_entered(user_input)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change any of the account's data; it stays the same application (client id and token URL)."""
        if user_input is None:
            entry = self._get_reconfigure_entry()
            self._form_input = _form_from_credentials(entry.data)
            self._custom_api_url = entry.data[CONF_API_URL]
            return self._show_credentials_form()
        return await self._async_credentials_entered(user_input)

    async def async_step_custom_url(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The API URL, asked only when the custom environment was chosen."""
        if user_input is None:
            return self._show_custom_url_form()
        self._custom_api_url = user_input[CONF_API_URL].strip()
        return await self._async_test_and_finish({**self._credentials, CONF_API_URL: self._custom_api_url})

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The cloud refused the stored credentials."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for a new signing key (and key id), and prove it by fetching a token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = {CONF_KEY_ID: entry.data.get(CONF_KEY_ID, "")}
        if user_input is not None:
            suggested = user_input
            data = {key: value for key, value in entry.data.items() if key != CONF_KEY_ID}
            data[CONF_SIGNING_KEY] = user_input[CONF_SIGNING_KEY].strip()
            if key_id := user_input.get(CONF_KEY_ID, "").strip():
                data[CONF_KEY_ID] = key_id
            errors = await _async_test_credentials(self.hass, data)
            if not errors:
                return self._async_update_and_reload(entry, data)
            # Only the key's fields are on this form; a problem elsewhere in the stored data goes on top.
            errors = {(key if key in REAUTH_FIELDS else "base"): error for key, error in errors.items()}
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(REAUTH_SCHEMA, suggested),
            errors=errors,
            description_placeholders={CONF_CLIENT_ID: entry.data[CONF_CLIENT_ID]},
        )

    async def _async_credentials_entered(self, user_input: dict[str, Any]) -> ConfigFlowResult:
        """The account form was submitted (user or reconfigure)."""
        self._form_input = user_input
        credentials = _credentials_from_form(user_input)
        if self.source == SOURCE_RECONFIGURE and not credentials[CONF_SIGNING_KEY]:
            credentials[CONF_SIGNING_KEY] = self._get_reconfigure_entry().data[CONF_SIGNING_KEY]
        if not credentials[CONF_CLIENT_ID]:
            return self._show_credentials_form({CONF_CLIENT_ID: ERROR_EMPTY_ID})
        environment = Environment(user_input[CONF_ENVIRONMENT])
        if environment is Environment.CUSTOM:
            self._credentials = credentials
            return await self.async_step_custom_url()
        return await self._async_test_and_finish({**credentials, CONF_API_URL: ENVIRONMENT_URLS[environment]})

    async def _async_test_and_finish(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Fetch a token, then create or update the entry; or show the errors where they belong."""
        errors = await _async_test_credentials(self.hass, data)
        if CONF_API_URL in errors:
            return self._show_custom_url_form(errors)
        if errors:
            return self._show_credentials_form(errors)
        await self.async_set_unique_id(_unique_id(data))
        if self.source == SOURCE_RECONFIGURE:
            # Another client id or token URL is another CHeKT application: add it as a new entry instead.
            self._abort_if_unique_id_mismatch()
            return self._async_update_and_reload(self._get_reconfigure_entry(), data)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=f"CHeKT ({data[CONF_CLIENT_ID]})", data=data)

    @callback
    def _show_credentials_form(self, errors: dict[str, str] | None = None) -> ConfigFlowResult:
        """The account form, with what was entered (or stored) filled in."""
        reconfigure = self.source == SOURCE_RECONFIGURE
        return self.async_show_form(
            step_id=SOURCE_RECONFIGURE if reconfigure else "user",
            data_schema=self.add_suggested_values_to_schema(
                _credentials_schema(reconfigure=reconfigure), self._form_input
            ),
            errors=errors,
        )

    @callback
    def _show_custom_url_form(self, errors: dict[str, str] | None = None) -> ConfigFlowResult:
        """The custom API URL form."""
        return self.async_show_form(
            step_id="custom_url",
            data_schema=self.add_suggested_values_to_schema(CUSTOM_URL_SCHEMA, {CONF_API_URL: self._custom_api_url}),
            errors=errors,
        )

    @callback
    def _async_update_and_reload(self, entry: ConfigEntry, data: Mapping[str, Any]) -> ConfigFlowResult:
        """Store the new data and have the entry reloaded, then end the flow.

        The integration keeps an update listener that reloads the entry on every change (subentry changes
        need it), and core refuses the reloading helpers together with a listener from 2026.12. So the
        listener reloads when the data changed while it is registered; otherwise (data unchanged, or the
        entry failed to set up and has no listener) the reload is scheduled here.
        """
        changed = self.hass.config_entries.async_update_entry(entry, data=data)
        if not (changed and entry.update_listeners):
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(
            reason="reauth_successful" if self.source == SOURCE_REAUTH else "reconfigure_successful"
        )


class ChektOptionsFlow(OptionsFlow):
    """Snapshot interval, trouble delay, the age after which an event is flagged late, and the clips' lengths.

    A plain `OptionsFlow`: the integration's update listener reloads the entry when the options change.
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The only step."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    CONF_SNAPSHOT_INTERVAL: float(user_input[CONF_SNAPSHOT_INTERVAL]),
                    CONF_TROUBLE_DELAY: round(user_input[CONF_TROUBLE_DELAY]),
                    CONF_LATE_AFTER: round(user_input[CONF_LATE_AFTER]),
                    CONF_SHORT_CLIP_LENGTH: round(user_input[CONF_SHORT_CLIP_LENGTH]),
                    CONF_EVENT_CLIP_MAX: round(user_input[CONF_EVENT_CLIP_MAX]),
                }
            )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, self.config_entry.options),
        )


def _clip_problem(hass: HomeAssistant, data: Mapping[str, Any]) -> str | None:
    """Why the clip options of a camera mapping cannot work, or None.

    Clips are recorded from the camera's stream: a clip option needs a camera with
    `CameraEntityFeature.STREAM` (a camera without a state cannot be checked, and is refused too).
    The hook for further clip checks.
    """
    if not (data[CONF_UPLOAD_SHORT_MP4] or data[CONF_UPLOAD_EVENT_MP4]):
        return None
    state = hass.states.get(data[CONF_CAMERA_ENTITY_ID])
    features = int(state.attributes.get(ATTR_SUPPORTED_FEATURES, 0)) if state is not None else 0
    if features & CameraEntityFeature.STREAM:
        return None
    return ERROR_STREAM_NOT_SUPPORTED


class _MappingSubentryFlow(ConfigSubentryFlow):
    """Adding and reconfiguring one mapped entity (a camera or an alarm panel) of a CHeKT entry."""

    SCHEMA: ClassVar[probatio.Schema]
    SUBENTRY_TYPE: ClassVar[str]
    ENTITY_KEY: ClassVar[str]
    ID_KEYS: ClassVar[tuple[str, ...]] = (CONF_LOCATION_ID, CONF_CAMERA_ID)

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Map a new entity."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = self._validate(user_input, own_subentry_id=None)
            if not errors:
                return self.async_create_entry(title=self._title(data), data=data)
        return self._show_form("user", user_input or {}, errors)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Change a mapping; all its data can change."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = self._validate(user_input, own_subentry_id=subentry.subentry_id)
            if not errors:
                return self.async_update_and_abort(self._get_entry(), subentry, title=self._title(data), data=data)
        return self._show_form(SOURCE_RECONFIGURE, user_input or subentry.data, errors)

    def _data(self, user_input: Mapping[str, Any]) -> dict[str, Any]:
        """The subentry data for a submitted form, trimmed; the subclasses add their own fields."""
        return {
            self.ENTITY_KEY: user_input[self.ENTITY_KEY],
            CONF_LOCATION_ID: user_input[CONF_LOCATION_ID].strip(),
            CONF_CAMERA_ID: user_input[CONF_CAMERA_ID].strip(),
            CONF_SIGNAL_MONITORING_CENTER: user_input[CONF_SIGNAL_MONITORING_CENTER],
        }

    def _problems(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Errors particular to a kind of mapping; none by default."""
        return {}

    def _validate(
        self, user_input: Mapping[str, Any], *, own_subentry_id: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The data to store and the errors that stop it: empty ids, an entity mapped twice, and the rest."""
        data = self._data(user_input)
        errors = {key: ERROR_EMPTY_ID for key in self.ID_KEYS if not data[key]}
        entity_id = data[self.ENTITY_KEY]
        if any(
            subentry.data.get(self.ENTITY_KEY) == entity_id
            for subentry in self._get_entry().get_subentries_of_type(self.SUBENTRY_TYPE)
            if subentry.subentry_id != own_subentry_id
        ):
            errors[self.ENTITY_KEY] = ERROR_ALREADY_MAPPED
        return data, errors | self._problems(data)

    def _title(self, data: Mapping[str, Any]) -> str:
        """`<friendly name or entity id> (<CHeKT camera id>)`."""
        entity_id = data[self.ENTITY_KEY]
        state = self.hass.states.get(entity_id)
        name = (state.attributes.get(ATTR_FRIENDLY_NAME) if state is not None else None) or entity_id
        return f"{name} ({data[CONF_CAMERA_ID]})"

    @callback
    def _show_form(self, step_id: str, values: Mapping[str, Any], errors: dict[str, str]) -> SubentryFlowResult:
        """The mapping form with `values` filled in."""
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(self.SCHEMA, values),
            errors=errors,
        )


class CameraSubentryFlowHandler(_MappingSubentryFlow):
    """A camera, the sensors that raise its alarms, its CHeKT ids and what is sent with an alarm."""

    SCHEMA = CAMERA_SCHEMA
    SUBENTRY_TYPE = SUBENTRY_CAMERA
    ENTITY_KEY = CONF_CAMERA_ENTITY_ID

    @override
    def _data(self, user_input: Mapping[str, Any]) -> dict[str, Any]:
        """Add the camera's fields; `recorder_id` only when not empty, alarm entities without repeats."""
        data = super()._data(user_input)
        data.update(
            {
                CONF_ALARM_ENTITY_IDS: list(dict.fromkeys(user_input[CONF_ALARM_ENTITY_IDS])),
                CONF_SNAPSHOT_COUNT: round(user_input[CONF_SNAPSHOT_COUNT]),
                CONF_UPLOAD_SHORT_MP4: user_input[CONF_UPLOAD_SHORT_MP4],
                CONF_UPLOAD_EVENT_MP4: user_input[CONF_UPLOAD_EVENT_MP4],
                CONF_TROUBLE_ON_UNAVAILABLE: user_input[CONF_TROUBLE_ON_UNAVAILABLE],
            }
        )
        if recorder_id := user_input.get(CONF_RECORDER_ID, "").strip():
            data[CONF_RECORDER_ID] = recorder_id
        return data

    @override
    def _problems(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Clip options need a camera that can stream."""
        problem = _clip_problem(self.hass, data)
        return {"base": problem} if problem else {}


class AlarmPanelSubentryFlowHandler(_MappingSubentryFlow):
    """An alarm control panel whose arming changes and alarms are reported."""

    SCHEMA = ALARM_PANEL_SCHEMA
    SUBENTRY_TYPE = SUBENTRY_ALARM_PANEL
    ENTITY_KEY = CONF_PANEL_ENTITY_ID
