"""Repair issues the outbox raises for what a user should know or fix, and clears when it is over."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

ISSUE_DELIVERY_FAILING = "delivery_failing"
ISSUE_EVENTS_REJECTED = "events_rejected"
ISSUE_OUTBOX_FULL = "outbox_full"


class DeliveryIssues:
    """The repair issues of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str, title: str) -> None:
        """Issues are named after the entry, so two CHeKT applications do not clear each other's."""
        self._hass = hass
        self._entry_id = entry_id
        self._title = title

    def _issue_id(self, kind: str) -> str:
        return f"{kind}_{self._entry_id}"

    def _create(self, kind: str, severity: ir.IssueSeverity, placeholders: dict[str, str]) -> None:
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self._issue_id(kind),
            is_fixable=False,
            is_persistent=False,
            severity=severity,
            translation_key=kind,
            translation_placeholders={"entry": self._title, **placeholders},
        )

    def _delete(self, kind: str) -> None:
        ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(kind))

    def delivery_failing(self, minutes: int, error: str) -> None:
        """Events have waited for the cloud longer than the threshold."""
        self._create(ISSUE_DELIVERY_FAILING, ir.IssueSeverity.ERROR, {"minutes": str(minutes), "error": error})

    def delivery_recovered(self) -> None:
        """The cloud answers again."""
        self._delete(ISSUE_DELIVERY_FAILING)

    def events_rejected(self, count: int, message: str) -> None:
        """The cloud keeps refusing events as malformed or forbidden."""
        self._create(ISSUE_EVENTS_REJECTED, ir.IssueSeverity.ERROR, {"count": str(count), "message": message})

    def rejections_over(self) -> None:
        """An event was accepted again."""
        self._delete(ISSUE_EVENTS_REJECTED)

    def outbox_full(self, dropped_media: int, dropped_events: int) -> None:
        """The outbox's limits forced it to drop media (and, at the very end, events)."""
        self._create(
            ISSUE_OUTBOX_FULL,
            ir.IssueSeverity.WARNING,
            {"dropped_media": str(dropped_media), "dropped_events": str(dropped_events)},
        )

    def outbox_drained(self) -> None:
        """The backlog is delivered."""
        self._delete(ISSUE_OUTBOX_FULL)

    def clear_all(self) -> None:
        """The entry is being removed."""
        for kind in (ISSUE_DELIVERY_FAILING, ISSUE_EVENTS_REJECTED, ISSUE_OUTBOX_FULL):
            self._delete(kind)
