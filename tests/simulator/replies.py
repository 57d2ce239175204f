"""Reply bodies in the shapes the real services use, and the way the simulator hangs up on a client."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web


def api_error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    """The event API's error shape: `{"error": "<reason phrase>", "message": "..."}`."""
    return web.json_response({"error": HTTPStatus(status).phrase, "message": message}, status=status, headers=headers)


def oauth_error(status: int, error: str, description: str, *, headers: dict[str, str] | None = None) -> web.Response:
    """The OAuth 2.0 error shape of the token endpoint (RFC 6749 section 5.2)."""
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def s3_error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    """The XML error document S3 answers a pre-signed PUT with."""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(text=body, status=status, content_type="application/xml", headers=headers)


def hang_up(request: web.Request) -> web.Response:
    """Close the connection so that the client gets no reply at all.

    aiohttp then fails to write the returned response into the closed transport and treats that as a client
    that went away, quietly, which is exactly what the client on the other side should experience.
    """
    transport = request.transport
    if transport is not None:  # None when the client has already gone
        transport.close()
    return web.Response(status=204)
