"""The human view (`GET /`), the scripts' view (`GET /api/state`) and stored media (`GET /media/...`).

Nothing here renders a header, token, signature, URL with a query, or secret: only ids, times and counts.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .faults import FaultPlan
from .media import MediaSlot, MediaStore
from .records import EventRecord, MediaKind, Records

MEDIA_ROUTE = "/media/{event_id}/{kind}/{seq}"
MAX_ROWS = 200

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
td.accepted { color: #176917; } td.discarded { color: #8a6d00; } td.rejected, td.faulted { color: #a11; }
img { height: 72px; margin-right: 4px; border: 1px solid #ccc; }
"""


def _cell(value: object) -> str:
    return f"<td>{escape(str(value)) if value not in (None, '') else '&ndash;'}</td>"


def _field(record: EventRecord, name: str) -> object:
    return record.body.get(name) if isinstance(record.body, dict) else None


def _thumbnails(event_id: str | None, store: MediaStore, snapshot_count: object) -> str:
    if event_id is None or not isinstance(snapshot_count, int) or isinstance(snapshot_count, bool):
        return ""
    images = []
    for seq in range(min(snapshot_count, 10)):
        if store.get(MediaSlot(event_id, MediaKind.SNAPSHOT, seq)) is not None:
            src = f"/media/{quote(event_id, safe='')}/{MediaKind.SNAPSHOT}/{seq}"
            images.append(f'<img src="{escape(src)}" alt="snapshot {seq}">')
    return "".join(images)


def _outcome(record: EventRecord) -> str:
    status = str(record.status) if record.status else "no reply"
    fault = f", {record.fault} fault" if record.fault else ""
    return f"{record.outcome} ({status}{fault})"


def _row(record: EventRecord, uploads: Counter[str], callbacks: Counter[str], store: MediaStore) -> str:
    event_id = record.event_id
    cells = [
        _cell(record.received_at.strftime("%H:%M:%S.%f")[:-3]),
        _cell(_field(record, "event_type")),
        _cell(_field(record, "event_status")),
        _cell(_field(record, "location_id")),
        _cell(_field(record, "camera_id")),
        _cell(event_id),
        f'<td class="{record.outcome}">{escape(_outcome(record))}</td>',
        _cell(uploads[event_id] if event_id else None),
        _cell(callbacks[event_id] if event_id else None),
        f"<td>{_thumbnails(event_id, store, _field(record, 'upload_snapshot_count'))}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def render_page(records: Records, store: MediaStore) -> str:
    """Received events, newest first, refreshed every second."""
    uploads = Counter(upload.event_id for upload in records.uploads)
    callbacks = Counter(callback.event_id for callback in records.callbacks if callback.status == 200)
    rows = [_row(record, uploads, callbacks, store) for record in reversed(records.events[-MAX_ROWS:])]
    counts = ", ".join(f"{escape(name)}: {value}" for name, value in records.counts().items())
    headings = "".join(
        f"<th>{name}</th>"
        for name in (
            "Received",
            "Type",
            "Event status",
            "Location",
            "Camera",
            "Event id",
            "Outcome",
            "Uploads",
            "Callbacks",
            "Snapshots",
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="1">
<title>CHeKT cloud simulator</title><style>{_STYLE}</style></head>
<body><h1>CHeKT cloud simulator</h1><p>{counts}</p>
<table><thead><tr>{headings}</tr></thead><tbody>
{"".join(rows) or '<tr><td colspan="10">No events yet.</td></tr>'}
</tbody></table></body></html>
"""


def state_json(records: Records, faults: FaultPlan, disarmed_locations: set[str]) -> dict[str, Any]:
    """Counts and a summary of every event request, for scripts."""
    return {
        "counts": records.counts(),
        "pending_faults": faults.pending,
        "disarmed_locations": sorted(disarmed_locations),
        "accepted_event_ids": list(records.accepted),
        "events": [
            {
                "received_at": record.received_at.isoformat(),
                "event_id": record.event_id,
                "status": record.status,
                "outcome": record.outcome.value,
                "fault": record.fault.value if record.fault else None,
            }
            for record in records.events
        ],
    }


class PageEndpoints:
    """`GET /`, `GET /api/state` and `GET /media/{event_id}/{kind}/{seq}`."""

    def __init__(self, records: Records, store: MediaStore, faults: FaultPlan, disarmed_locations: set[str]) -> None:
        """Read from the simulator's shared state."""
        self._records = records
        self._store = store
        self._faults = faults
        self._disarmed_locations = disarmed_locations

    async def page(self, _request: web.Request) -> web.Response:
        """The HTML page."""
        return web.Response(text=render_page(self._records, self._store), content_type="text/html")

    async def state(self, _request: web.Request) -> web.Response:
        """The JSON state."""
        return web.json_response(state_json(self._records, self._faults, self._disarmed_locations))

    async def media(self, request: web.Request) -> web.Response:
        """The newest bytes uploaded for a slot, with the content type they were uploaded with."""
        try:
            slot = MediaSlot(
                request.match_info["event_id"],
                MediaKind(request.match_info["kind"]),
                int(request.match_info["seq"]),
            )
        except ValueError:
            raise web.HTTPNotFound from None
        upload = self._store.get(slot)
        if upload is None:
            raise web.HTTPNotFound
        return web.Response(body=upload.data, content_type=upload.content_type)
