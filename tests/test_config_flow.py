"""The config flow, reauth, reconfigure and options, against the CHeKT simulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, Mock, patch

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType, InvalidData
from homeassistant.helpers import config_validation as cv
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.chekt.api import KeyProblem
from custom_components.chekt.config_flow import (
    ALARM_PANEL_SCHEMA,
    CAMERA_SCHEMA,
    CONF_ENVIRONMENT,
    CUSTOM_URL_SCHEMA,
    OPTIONS_SCHEMA,
    REAUTH_SCHEMA,
    SECTION_ADVANCED,
    _credentials_schema,
    _unique_id,
)
from custom_components.chekt.const import (
    CONF_API_KEY,
    CONF_API_URL,
    CONF_AUDIENCE,
    CONF_CLIENT_ID,
    CONF_EVENT_CLIP_MAX,
    CONF_KEY_ID,
    CONF_LATE_AFTER,
    CONF_SHORT_CLIP_LENGTH,
    CONF_SIGNING_KEY,
    CONF_SNAPSHOT_INTERVAL,
    CONF_TOKEN_URL,
    CONF_TROUBLE_DELAY,
    DEVELOPMENT_API_URL,
    DOMAIN,
    PRODUCTION_API_URL,
    Environment,
)
from tests.conftest import AUDIENCE, CLIENT_ID, SECRET
from tests.simulator import ChektSimulator, Endpoint, Fault, FaultKind

COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN
OTHER_CLIENT = "other-client"
OTHER_SECRET = "another-shared-secret-of-reasonable-length-987"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None = None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA key for the module: generating them is the slow part."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(autouse=True)
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Entries are created, reloaded and unloaded without running the integration's setup."""
    with (
        patch(
            "custom_components.chekt.async_setup_entry",
            new_callable=AsyncMock,
            return_value=True,
            create=True,
        ) as setup,
        patch(
            "custom_components.chekt.async_unload_entry",
            new_callable=AsyncMock,
            return_value=True,
            create=True,
        ),
    ):
        yield setup


def form_input(
    simulator: ChektSimulator,
    environment: Environment = Environment.CUSTOM,
    *,
    token_url: str | None = None,
    client_id: str = CLIENT_ID,
    signing_key: str = SECRET,
    **advanced: str,
) -> dict[str, Any]:
    """What the user form submits; `advanced` defaults to the simulator client's audience."""
    return {
        CONF_ENVIRONMENT: environment.value,
        CONF_TOKEN_URL: simulator.token_url if token_url is None else token_url,
        CONF_CLIENT_ID: client_id,
        CONF_SIGNING_KEY: signing_key,
        SECTION_ADVANCED: advanced or {CONF_AUDIENCE: AUDIENCE},
    }


def suggested(result: FlowResult[Any, Any], key: str, section_key: str | None = None) -> Any:
    """The value a form shows pre-filled for `key` (inside `section_key` if given), or None."""
    schema = result["data_schema"].schema
    if section_key is not None:
        schema = next(value for marker, value in schema.items() if marker == section_key).schema.schema
    for marker in schema:
        if marker == key:
            return (marker.description or {}).get("suggested_value")
    raise KeyError(key)


async def start_user_flow(hass: HomeAssistant) -> FlowResult[Any, Any]:
    """The first form of a new flow."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert not result["errors"]
    return result


async def configure(hass: HomeAssistant, result: FlowResult[Any, Any], user_input: dict[str, Any]) -> Any:
    """Submit a form of a config flow."""
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


def simulator_entry(simulator: ChektSimulator, **data: Any) -> MockConfigEntry:
    """An entry as the flow creates it for the simulator's client, with `data` overriding."""
    entry_data = {
        CONF_API_URL: simulator.base_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: SECRET,
        CONF_AUDIENCE: AUDIENCE,
    } | data
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"CHeKT ({CLIENT_ID})",
        unique_id=f"{CLIENT_ID}@{simulator.token_url}",
        data=entry_data,
    )


# --- user step ---


@pytest.mark.parametrize(
    ("environment", "api_url"),
    [(Environment.PRODUCTION, PRODUCTION_API_URL), (Environment.DEVELOPMENT, DEVELOPMENT_API_URL)],
)
async def test_user_known_environment(
    hass: HomeAssistant,
    simulator: ChektSimulator,
    mock_setup_entry: AsyncMock,
    environment: Environment,
    api_url: str,
) -> None:
    """Production and development store their API URL; ids and URLs are trimmed; empty options left out."""
    result = await start_user_flow(hass)
    user_input = form_input(
        simulator,
        environment,
        token_url=f"  {simulator.token_url} ",
        client_id=f" {CLIENT_ID}\t",
        signing_key=f"{SECRET}\n",
        **{CONF_KEY_ID: "  ", CONF_AUDIENCE: f" {AUDIENCE} ", CONF_API_KEY: ""},
    )

    result = await configure(hass, result, user_input)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"CHeKT ({CLIENT_ID})"
    assert result["data"] == {
        CONF_API_URL: api_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: SECRET,
        CONF_AUDIENCE: AUDIENCE,
    }
    assert result["options"] == {}
    assert result["result"].unique_id == f"{CLIENT_ID}@{simulator.token_url}"
    assert len(simulator.token_requests) == 1
    assert simulator.token_requests[0].status == 200
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 1


async def test_user_custom_environment(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """A custom environment asks for the API URL in a second step; every optional field is stored."""
    simulator.add_client(OTHER_CLIENT, secret=OTHER_SECRET, key_id="kid-7", audience=AUDIENCE, api_key="k-1")
    result = await start_user_flow(hass)

    result = await configure(
        hass,
        result,
        form_input(
            simulator,
            client_id=OTHER_CLIENT,
            signing_key=OTHER_SECRET,
            **{CONF_KEY_ID: "kid-7", CONF_AUDIENCE: AUDIENCE, CONF_API_KEY: " k-1 "},
        ),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "custom_url"
    assert not result["errors"]
    assert not simulator.token_requests

    result = await configure(hass, result, {CONF_API_URL: f" {simulator.base_url} "})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"CHeKT ({OTHER_CLIENT})"
    assert result["data"] == {
        CONF_API_URL: simulator.base_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: OTHER_CLIENT,
        CONF_SIGNING_KEY: OTHER_SECRET,
        CONF_KEY_ID: "kid-7",
        CONF_AUDIENCE: AUDIENCE,
        CONF_API_KEY: "k-1",
    }


async def test_user_rsa_key(hass: HomeAssistant, simulator: ChektSimulator, rsa_key: rsa.RSAPrivateKey) -> None:
    """An RSA private key with its key id signs RS256 assertions the cloud accepts."""
    simulator.add_client(OTHER_CLIENT, public_key_pem=_public_pem(rsa_key), key_id="rsa-1", audience=AUDIENCE)
    result = await start_user_flow(hass)
    pem = _pem(rsa_key)

    result = await configure(
        hass,
        result,
        form_input(
            simulator,
            Environment.PRODUCTION,
            client_id=OTHER_CLIENT,
            signing_key=pem,
            **{CONF_KEY_ID: "rsa-1", CONF_AUDIENCE: AUDIENCE},
        ),
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_API_URL: PRODUCTION_API_URL,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: OTHER_CLIENT,
        CONF_SIGNING_KEY: pem.strip(),
        CONF_KEY_ID: "rsa-1",
        CONF_AUDIENCE: AUDIENCE,
    }
    assert simulator.token_requests[-1].alg == "RS256"


async def test_user_ec_key(hass: HomeAssistant, simulator: ChektSimulator, ec_key: ec.EllipticCurvePrivateKey) -> None:
    """A P-256 private key signs ES256 assertions; no key id, no audience."""
    simulator.add_client(OTHER_CLIENT, public_key_pem=_public_pem(ec_key))
    result = await start_user_flow(hass)
    pem = _pem(ec_key)

    result = await configure(
        hass,
        result,
        form_input(simulator, Environment.DEVELOPMENT, client_id=OTHER_CLIENT, signing_key=pem, **{CONF_KEY_ID: ""}),
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_API_URL: DEVELOPMENT_API_URL,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: OTHER_CLIENT,
        CONF_SIGNING_KEY: pem.strip(),
    }
    assert simulator.token_requests[-1].alg == "ES256"


def _garbage_pem() -> str:
    return "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"


def _encrypted_pem() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()), password=b"a passphrase")


def _public_key_pem() -> str:
    return _public_pem(ec.generate_private_key(ec.SECP256R1()))


def _p384_pem() -> str:
    return _pem(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        pytest.param({CONF_SIGNING_KEY: "wrong-secret"}, {"base": "invalid_auth"}, id="wrong_secret"),
        pytest.param({CONF_CLIENT_ID: "unknown-client"}, {"base": "invalid_auth"}, id="unknown_client"),
        pytest.param({CONF_CLIENT_ID: "  "}, {CONF_CLIENT_ID: "empty_id"}, id="empty_client_id"),
        pytest.param({CONF_SIGNING_KEY: " \n "}, {CONF_SIGNING_KEY: "invalid_key_empty"}, id="empty_key"),
        pytest.param(
            {CONF_SIGNING_KEY: _garbage_pem()},
            {CONF_SIGNING_KEY: "invalid_key_unparseable"},
            id="garbage_pem",
        ),
        pytest.param(
            {CONF_SIGNING_KEY: _encrypted_pem()},
            {CONF_SIGNING_KEY: "invalid_key_encrypted"},
            id="encrypted_pem",
        ),
        pytest.param(
            {CONF_SIGNING_KEY: _public_key_pem()},
            {CONF_SIGNING_KEY: "invalid_key_public_key"},
            id="public_pem",
        ),
        pytest.param({CONF_SIGNING_KEY: _p384_pem()}, {CONF_SIGNING_KEY: "invalid_key_unsupported"}, id="p384_pem"),
        pytest.param(
            {CONF_TOKEN_URL: "http://example.com/oauth/token"},
            {CONF_TOKEN_URL: "insecure_url"},
            id="http_url",
        ),
        pytest.param({CONF_TOKEN_URL: "not a url"}, {CONF_TOKEN_URL: "invalid_url"}, id="not_a_url"),
        pytest.param(
            {CONF_TOKEN_URL: "https://user:pw@example.com/oauth/token"},
            {CONF_TOKEN_URL: "invalid_url"},
            id="url_with_password",
        ),
    ],
)
async def test_user_errors_and_recovery(
    hass: HomeAssistant, simulator: ChektSimulator, overrides: dict[str, str], errors: dict[str, str]
) -> None:
    """Each problem is shown on its field (or on top), the input stays, and a corrected submit succeeds."""
    result = await start_user_flow(hass)
    bad_input = form_input(simulator, Environment.PRODUCTION) | overrides

    result = await configure(hass, result, bad_input)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == errors
    for key in (CONF_ENVIRONMENT, CONF_TOKEN_URL, CONF_CLIENT_ID, CONF_SIGNING_KEY):
        assert suggested(result, key) == bad_input[key]
    assert suggested(result, CONF_AUDIENCE, SECTION_ADVANCED) == AUDIENCE

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SIGNING_KEY] == SECRET


async def test_user_cloud_down_then_back(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """A stopped cloud is cannot_connect; once it is back, the same input succeeds."""
    result = await start_user_flow(hass)
    await simulator.stop()

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    await simulator.start()
    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=500), id="server_error"),
        pytest.param(Fault(Endpoint.TOKEN, FaultKind.RATE_LIMIT), id="rate_limited"),
        pytest.param(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=404), id="rejected"),
        pytest.param(Fault(Endpoint.TOKEN, FaultKind.DROP), id="dropped"),
        pytest.param(Fault(Endpoint.TOKEN, FaultKind.MALFORMED_REPLY), id="malformed_reply"),
    ],
)
async def test_user_cloud_faults(hass: HomeAssistant, simulator: ChektSimulator, fault: Fault) -> None:
    """A failing or misbehaving token endpoint is cannot_connect; the next try succeeds."""
    result = await start_user_flow(hass)
    simulator.inject(fault)

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_unexpected_error(
    hass: HomeAssistant, simulator: ChektSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything unexpected is `unknown`, logged with its traceback and without the secret."""
    result = await start_user_flow(hass)
    caplog.set_level(logging.DEBUG)

    with patch("custom_components.chekt.config_flow.async_create_client", side_effect=RuntimeError("boom")):
        result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while testing the CHeKT credentials" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    assert SECRET not in caplog.text

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_secrets_never_logged(
    hass: HomeAssistant, simulator: ChektSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug logging of a refused and a failed test shows no secret."""
    caplog.set_level(logging.DEBUG)
    result = await start_user_flow(hass)
    simulator.inject(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=500))
    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION, signing_key="sekrit-1"))
    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION, signing_key="sekrit-2"))

    assert result["errors"] == {"base": "invalid_auth"}
    assert "sekrit" not in caplog.text


@pytest.mark.parametrize(
    ("api_url", "error"),
    [
        ("http://example.com", "insecure_url"),
        ("not a url", "invalid_url"),
        ("ftp://example.com", "invalid_url"),
    ],
)
async def test_custom_url_errors_and_recovery(
    hass: HomeAssistant, simulator: ChektSimulator, api_url: str, error: str
) -> None:
    """A bad custom API URL is shown on the custom URL step, which keeps it; a corrected URL succeeds."""
    result = await start_user_flow(hass)
    result = await configure(hass, result, form_input(simulator))

    result = await configure(hass, result, {CONF_API_URL: api_url})

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "custom_url"
    assert result["errors"] == {CONF_API_URL: error}
    assert suggested(result, CONF_API_URL) == api_url
    assert not simulator.token_requests

    result = await configure(hass, result, {CONF_API_URL: simulator.base_url})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_URL] == simulator.base_url


async def test_custom_url_credentials_error(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """A credentials problem found after the custom URL step goes back to the first form, input kept."""
    result = await start_user_flow(hass)
    result = await configure(hass, result, form_input(simulator, signing_key="wrong-secret"))
    result = await configure(hass, result, {CONF_API_URL: simulator.base_url})

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result, CONF_ENVIRONMENT) == Environment.CUSTOM.value

    result = await configure(hass, result, form_input(simulator))

    assert result["step_id"] == "custom_url"
    assert suggested(result, CONF_API_URL) == simulator.base_url

    result = await configure(hass, result, {CONF_API_URL: simulator.base_url})

    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_already_configured(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """The same client id at the same token URL is one entry."""
    simulator_entry(simulator).add_to_hass(hass)
    result = await start_user_flow(hass)

    result = await configure(hass, result, form_input(simulator, Environment.DEVELOPMENT))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_same_client_other_token_url_is_another_entry(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """The unique id is per client id and token URL: the same id at another authorization server is new."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, unique_id=f"{CLIENT_ID}@https://auth.example.com/oauth/token")
    result = await start_user_flow(hass)

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2


@pytest.mark.parametrize(
    ("token_url", "expected"),
    [
        ("HTTPS://Auth.Example.COM:443/oauth/token/", "https://auth.example.com/oauth/token"),
        ("https://auth.example.com/oauth/token", "https://auth.example.com/oauth/token"),
        ("http://127.0.0.1:8080/oauth/token", "http://127.0.0.1:8080/oauth/token"),
        ("https://auth.example.com:8443", "https://auth.example.com:8443"),
    ],
)
def test_unique_id_normalises_the_token_url(token_url: str, expected: str) -> None:
    """Case of scheme and host, a default port and a trailing slash do not make another account."""
    assert _unique_id({CONF_CLIENT_ID: "client", CONF_TOKEN_URL: token_url}) == f"client@{expected}"


# --- reauth ---


async def test_reauth(hass: HomeAssistant, simulator: ChektSimulator, rsa_key: rsa.RSAPrivateKey) -> None:
    """A rotated key (now RSA with a key id) is tested, stored, and the entry reloaded; errors on the way."""
    entry = simulator_entry(simulator, **{CONF_KEY_ID: "old-kid"})
    entry.add_to_hass(hass)
    simulator.add_client(CLIENT_ID, public_key_pem=_public_pem(rsa_key), key_id="rsa-2", audience=AUDIENCE)

    result = await entry.start_reauth_flow(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"][CONF_CLIENT_ID] == CLIENT_ID
    assert suggested(result, CONF_KEY_ID) == "old-kid"
    assert suggested(result, CONF_SIGNING_KEY) is None

    result = await configure(hass, result, {CONF_SIGNING_KEY: SECRET, CONF_KEY_ID: "old-kid"})

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await configure(hass, result, {CONF_SIGNING_KEY: _garbage_pem(), CONF_KEY_ID: "rsa-2"})

    assert result["errors"] == {CONF_SIGNING_KEY: "invalid_key_unparseable"}
    assert suggested(result, CONF_KEY_ID) == "rsa-2"

    pem = _pem(rsa_key)
    result = await configure(hass, result, {CONF_SIGNING_KEY: pem, CONF_KEY_ID: " rsa-2 "})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert dict(entry.data) == {
        CONF_API_URL: simulator.base_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: pem.strip(),
        CONF_KEY_ID: "rsa-2",
        CONF_AUDIENCE: AUDIENCE,
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_drops_the_key_id(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """Leaving the key id empty removes it; a cloud that is down is cannot_connect meanwhile."""
    entry = simulator_entry(simulator, **{CONF_KEY_ID: "old-kid"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    simulator.inject(Fault(Endpoint.TOKEN, FaultKind.STATUS, status=503))

    result = await configure(hass, result, {CONF_SIGNING_KEY: SECRET})

    assert result["errors"] == {"base": "cannot_connect"}

    result = await configure(hass, result, {CONF_SIGNING_KEY: SECRET})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert CONF_KEY_ID not in entry.data
    assert entry.data[CONF_SIGNING_KEY] == SECRET


async def test_reauth_stored_url_problem_shown_on_top(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """A stored URL the client refuses is not a field of the reauth form: the error goes on top."""
    entry = simulator_entry(simulator, **{CONF_TOKEN_URL: "http://example.com/oauth/token"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)

    result = await configure(hass, result, {CONF_SIGNING_KEY: SECRET})

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "insecure_url"}


# --- reconfigure ---


async def test_reconfigure_form_shows_stored_data(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """The form is filled from the entry, the signing key excepted; a custom URL is offered again."""
    entry = simulator_entry(simulator, **{CONF_API_KEY: "k-1"})
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_ENVIRONMENT) == Environment.CUSTOM.value
    assert suggested(result, CONF_TOKEN_URL) == simulator.token_url
    assert suggested(result, CONF_CLIENT_ID) == CLIENT_ID
    assert suggested(result, CONF_SIGNING_KEY) is None
    assert suggested(result, CONF_AUDIENCE, SECTION_ADVANCED) == AUDIENCE
    assert suggested(result, CONF_API_KEY, SECTION_ADVANCED) == "k-1"
    assert suggested(result, CONF_KEY_ID, SECTION_ADVANCED) is None

    result = await configure(hass, result, form_input(simulator, signing_key=""))

    assert result["step_id"] == "custom_url"
    assert suggested(result, CONF_API_URL) == simulator.base_url

    result = await configure(hass, result, {CONF_API_URL: simulator.base_url})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    # The API key was cleared on the form: it is gone.
    assert dict(entry.data) == {
        CONF_API_URL: simulator.base_url,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: SECRET,
        CONF_AUDIENCE: AUDIENCE,
    }


@pytest.mark.parametrize("api_url", [PRODUCTION_API_URL, DEVELOPMENT_API_URL + "/"])
async def test_reconfigure_known_environment_preselected(
    hass: HomeAssistant, simulator: ChektSimulator, api_url: str
) -> None:
    """A stored production or development URL selects its environment."""
    entry = simulator_entry(simulator, **{CONF_API_URL: api_url})
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)

    expected = Environment.PRODUCTION if api_url == PRODUCTION_API_URL else Environment.DEVELOPMENT
    assert suggested(result, CONF_ENVIRONMENT) == expected.value


async def test_reconfigure_changes_data_and_reloads(
    hass: HomeAssistant, simulator: ChektSimulator, mock_setup_entry: AsyncMock
) -> None:
    """A new environment, key and audience are tested and stored; the entry is reloaded."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    simulator.add_client(CLIENT_ID, secret=OTHER_SECRET, key_id="kid-9", audience=AUDIENCE)
    result = await entry.start_reconfigure_flow(hass)

    result = await configure(
        hass,
        result,
        form_input(
            simulator,
            Environment.PRODUCTION,
            signing_key=f" {OTHER_SECRET} ",
            **{CONF_KEY_ID: "kid-9", CONF_AUDIENCE: AUDIENCE},
        ),
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert dict(entry.data) == {
        CONF_API_URL: PRODUCTION_API_URL,
        CONF_TOKEN_URL: simulator.token_url,
        CONF_CLIENT_ID: CLIENT_ID,
        CONF_SIGNING_KEY: OTHER_SECRET,
        CONF_KEY_ID: "kid-9",
        CONF_AUDIENCE: AUDIENCE,
    }
    assert entry.title == f"CHeKT ({CLIENT_ID})"
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 2
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_unchanged_still_reloads(
    hass: HomeAssistant, simulator: ChektSimulator, mock_setup_entry: AsyncMock
) -> None:
    """Submitting the same data reloads too (a failed entry gets another setup)."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await configure(hass, result, form_input(simulator, signing_key=""))

    result = await configure(hass, result, {CONF_API_URL: simulator.base_url})

    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reconfigure_leaves_the_reload_to_the_update_listener(
    hass: HomeAssistant, simulator: ChektSimulator
) -> None:
    """With the integration's update listener registered, a change is left to it: no second reload."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    listener = AsyncMock()
    entry.add_update_listener(listener)
    result = await entry.start_reconfigure_flow(hass)

    with patch.object(hass.config_entries, "async_schedule_reload", Mock()) as schedule_reload:
        result = await configure(hass, result, form_input(simulator, Environment.DEVELOPMENT, signing_key=""))
        await hass.async_block_till_done()

    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_API_URL] == DEVELOPMENT_API_URL
    listener.assert_awaited_once()
    schedule_reload.assert_not_called()


async def test_reconfigure_errors_and_recovery(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """Errors show on the reconfigure form with the input kept; nothing is stored until a test passes."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION, signing_key="wrong"))

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result, CONF_SIGNING_KEY) == "wrong"

    result = await configure(
        hass, result, form_input(simulator, Environment.PRODUCTION, token_url="http://example.com/token")
    )

    assert result["errors"] == {CONF_TOKEN_URL: "insecure_url"}

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION, client_id=" "))

    assert result["errors"] == {CONF_CLIENT_ID: "empty_id"}
    assert entry.data[CONF_API_URL] == simulator.base_url

    result = await configure(hass, result, form_input(simulator, Environment.PRODUCTION, signing_key=""))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_API_URL] == PRODUCTION_API_URL


async def test_reconfigure_to_another_application_aborts(hass: HomeAssistant, simulator: ChektSimulator) -> None:
    """Another client id is another CHeKT application: reconfigure refuses it (add a new entry instead)."""
    entry = simulator_entry(simulator)
    entry.add_to_hass(hass)
    simulator.add_client(OTHER_CLIENT, secret=OTHER_SECRET, audience=AUDIENCE)
    result = await entry.start_reconfigure_flow(hass)

    result = await configure(
        hass,
        result,
        form_input(simulator, Environment.PRODUCTION, client_id=OTHER_CLIENT, signing_key=OTHER_SECRET),
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert entry.data[CONF_CLIENT_ID] == CLIENT_ID
    assert entry.data[CONF_SIGNING_KEY] == SECRET


# --- options ---


async def test_options_flow(hass: HomeAssistant) -> None:
    """Defaults first, then the stored values; numbers are stored as float and int."""
    entry = MockConfigEntry(domain=DOMAIN, data={}, unique_id="x@https://auth.example.com/oauth/token")
    entry.add_to_hass(hass)

    result = await hass.config_entries.options.async_init(entry.entry_id)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    schema = result["data_schema"]
    assert schema({}) == {
        CONF_SNAPSHOT_INTERVAL: 1.0,
        CONF_TROUBLE_DELAY: 60,
        CONF_LATE_AFTER: 300,
        CONF_SHORT_CLIP_LENGTH: 10,
        CONF_EVENT_CLIP_MAX: 120,
    }

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_SNAPSHOT_INTERVAL: 0.5,
            CONF_TROUBLE_DELAY: 120.0,
            CONF_LATE_AFTER: 600.0,
            CONF_SHORT_CLIP_LENGTH: 15.0,
            CONF_EVENT_CLIP_MAX: 300.0,
        },
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_SNAPSHOT_INTERVAL: 0.5,
        CONF_TROUBLE_DELAY: 120,
        CONF_LATE_AFTER: 600,
        CONF_SHORT_CLIP_LENGTH: 15,
        CONF_EVENT_CLIP_MAX: 300,
    }
    assert isinstance(entry.options[CONF_TROUBLE_DELAY], int)
    assert isinstance(entry.options[CONF_SHORT_CLIP_LENGTH], int)

    result = await hass.config_entries.options.async_init(entry.entry_id)

    assert suggested(result, CONF_SNAPSHOT_INTERVAL) == 0.5
    assert suggested(result, CONF_TROUBLE_DELAY) == 120
    assert suggested(result, CONF_LATE_AFTER) == 600
    assert suggested(result, CONF_SHORT_CLIP_LENGTH) == 15
    assert suggested(result, CONF_EVENT_CLIP_MAX) == 300

    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_SNAPSHOT_INTERVAL: 0.1, CONF_TROUBLE_DELAY: 60}
        )
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_SNAPSHOT_INTERVAL: 1.0, CONF_TROUBLE_DELAY: 3601}
        )
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(result["flow_id"], {CONF_SHORT_CLIP_LENGTH: 1})
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(result["flow_id"], {CONF_EVENT_CLIP_MAX: 601})


# --- translations ---


def _strings() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))
    return data


def test_translations_match_strings() -> None:
    """The English translation is strings.json, for the sections this flow owns."""
    english = json.loads((COMPONENT / "translations" / "en.json").read_text(encoding="utf-8"))
    strings = _strings()
    for section_name in ("config", "options", "config_subentries", "selector"):
        assert english[section_name] == strings[section_name]


def test_every_error_and_field_is_translated() -> None:
    """Each key problem has its message, every form field a label and a description."""
    config = _strings()["config"]
    for problem in KeyProblem:
        assert f"invalid_key_{problem}" in config["error"]
    for step in config["step"].values():
        assert step["data"].keys() == step["data_description"].keys()
        for section in step.get("sections", {}).values():
            assert section["data"].keys() == section["data_description"].keys()
    assert set(_strings()["selector"]["environment"]["options"]) == {env.value for env in Environment}


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (("config", "step", "user"), _credentials_schema(reconfigure=False)),
        (("config", "step", "reconfigure"), _credentials_schema(reconfigure=True)),
        (("config", "step", "custom_url"), CUSTOM_URL_SCHEMA),
        (("config", "step", "reauth_confirm"), REAUTH_SCHEMA),
        (("options", "step", "init"), OPTIONS_SCHEMA),
        (("config_subentries", "camera", "step", "user"), CAMERA_SCHEMA),
        (("config_subentries", "camera", "step", "reconfigure"), CAMERA_SCHEMA),
        (("config_subentries", "alarm_panel", "step", "user"), ALARM_PANEL_SCHEMA),
        (("config_subentries", "alarm_panel", "step", "reconfigure"), ALARM_PANEL_SCHEMA),
    ],
)
def test_forms_serialize_and_every_field_is_described(path: tuple[str, ...], schema: probatio.Schema) -> None:
    """What the frontend receives is JSON, and each field of it has a label and a description."""
    fields = probatio.to_field_list(schema, custom_serializer=cv.custom_serializer)
    json.dumps(fields)
    step: dict[str, Any] = _strings()
    for key in path:
        step = step[key]
    assert step["title"]
    described = 0
    for field in fields:
        if field.get("type") == "expandable":
            section = step["sections"][field["name"]]
            assert section["name"]
            names = [inner["name"] for inner in field["schema"]]
            assert set(names) == section["data"].keys() == section["data_description"].keys()
            described += len(names)
        else:
            assert field["name"] in step["data"]
            assert field["name"] in step["data_description"]
            described += 1
    assert described == len(step["data"]) + sum(len(sec["data"]) for sec in step.get("sections", {}).values())
