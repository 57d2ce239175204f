"""Building the CHeKT client from a config entry's data, the same way for setup and for the config flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import ChektClient, ChektCredentials, SigningKey
from .const import (
    CONF_API_KEY,
    CONF_API_URL,
    CONF_AUDIENCE,
    CONF_CLIENT_ID,
    CONF_KEY_ID,
    CONF_SIGNING_KEY,
    CONF_TOKEN_URL,
)


async def async_create_client(hass: HomeAssistant, data: Mapping[str, Any]) -> ChektClient:
    """A client for the stored `data`; raises `ChektKeyError` or `ChektUrlError` for a bad configuration.

    Nothing is sent: call `authenticate()` to prove the credentials.
    """
    # Parsing a PEM key is CPU work (RSA key checks): keep it off the event loop.
    signing_key = await hass.async_add_executor_job(SigningKey.parse, data[CONF_SIGNING_KEY], data.get(CONF_KEY_ID))
    credentials = ChektCredentials(
        token_url=data[CONF_TOKEN_URL],
        client_id=data[CONF_CLIENT_ID].strip(),
        signing_key=signing_key,
        audience=data.get(CONF_AUDIENCE) or None,
        api_key=data.get(CONF_API_KEY) or None,
    )
    return ChektClient(async_get_clientsession(hass), api_url=data[CONF_API_URL], credentials=credentials)
