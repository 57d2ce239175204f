"""Constants of the CHeKT integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "chekt"
