"""Pre-signed upload URLs, the uploads themselves (S3's part) and the upload callbacks (CHeKT's part)."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from .faults import Endpoint, FaultKind
from .records import CallbackRecord, MalformedRecord, MediaKind, Records, UploadRecord
from .replies import api_error, s3_error
from .urls import EVENTS_PATH, SimUrls

UPLOAD_ROUTE = "/uploads/{event_id}/{kind}/{seq}"
CALLBACK_ROUTE = EVENTS_PATH + "/{event_id}/uploads/callback"
JPEG_MAGIC = b"\xff\xd8"


def looks_like(kind: MediaKind, data: bytes) -> bool:
    """Whether the bytes start like real media of that kind: JPEG's SOI marker, or an MP4 `ftyp` box."""
    if kind is MediaKind.SNAPSHOT:
        return data.startswith(JPEG_MAGIC)
    return data[4:8] == b"ftyp"


@dataclass(frozen=True, slots=True)
class MediaSlot:
    """One media file of an event; clips always have seq 0."""

    event_id: str
    kind: MediaKind
    seq: int = 0

    @property
    def callback_seq(self) -> int | None:
        """The `seq` the callback URL carries: snapshots only, as in the spec."""
        return self.seq if self.kind is MediaKind.SNAPSHOT else None


class MediaSigner:
    """Signs upload URLs and callback tokens with a key only the simulator knows."""

    def __init__(self, urls: SimUrls, upload_ttl: float) -> None:
        """Upload URLs stay valid for `upload_ttl` seconds."""
        self._urls = urls
        self._upload_ttl = upload_ttl
        self._key = secrets.token_bytes(32)

    def _mac(self, *parts: object) -> str:
        message = "\n".join(str(part) for part in parts).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def upload_url(self, slot: MediaSlot) -> str:
        """A pre-signed PUT URL for the slot, expiring `upload_ttl` seconds from now."""
        expires = int(time.time() + self._upload_ttl)
        query = urlencode({"expires": expires, "signature": self._mac("upload", *_slot_parts(slot), expires)})
        return f"{self._urls.base_url}/uploads/{quote(slot.event_id, safe='')}/{slot.kind}/{slot.seq}?{query}"

    def callback_url(self, slot: MediaSlot) -> str:
        """The callback URL for the slot, carrying its own access token."""
        query: dict[str, Any] = {} if slot.callback_seq is None else {"seq": slot.callback_seq}
        query |= {"type": slot.kind.value, "access_token": self.callback_token(slot)}
        path = f"{EVENTS_PATH}/{quote(slot.event_id, safe='')}/uploads/callback"
        return f"{self._urls.base_url}{path}?{urlencode(query)}"

    def callback_token(self, slot: MediaSlot) -> str:
        """The token that authorises a callback for exactly this slot."""
        return self._mac("callback", *_slot_parts(slot))

    def upload_signature_ok(self, slot: MediaSlot, expires: str, signature: str) -> bool:
        """Whether the signature was made by this simulator for this slot and expiry."""
        return hmac.compare_digest(self._mac("upload", *_slot_parts(slot), expires), signature)

    def callback_token_ok(self, slot: MediaSlot, token: str) -> bool:
        """Whether the token was issued for this slot."""
        return hmac.compare_digest(self.callback_token(slot), token)

    def upload_targets(self, slot: MediaSlot) -> dict[str, Any]:
        """One entry of the reply's `uploads`: `seq` for snapshots, then both URLs."""
        target: dict[str, Any] = {"seq": slot.seq} if slot.kind is MediaKind.SNAPSHOT else {}
        return target | {"upload_put_url": self.upload_url(slot), "callback_put_url": self.callback_url(slot)}


def _slot_parts(slot: MediaSlot) -> tuple[str, str, int]:
    return slot.event_id, slot.kind.value, slot.seq


class MediaStore:
    """The latest bytes uploaded for each slot, for callbacks to check and for the page to show."""

    def __init__(self) -> None:
        """Start empty."""
        self._latest: dict[MediaSlot, UploadRecord] = {}

    def put(self, slot: MediaSlot, record: UploadRecord) -> None:
        """Keep the newest upload of a slot."""
        self._latest[slot] = record

    def get(self, slot: MediaSlot) -> UploadRecord | None:
        """The newest upload of a slot, if any."""
        return self._latest.get(slot)


class UploadEndpoint:
    """`PUT /uploads/{event_id}/{kind}/{seq}`: behaves like S3 behind a pre-signed URL."""

    def __init__(self, records: Records, signer: MediaSigner, store: MediaStore) -> None:
        """Record into `records`, check with `signer`, keep bytes in `store`."""
        self._records = records
        self._signer = signer
        self._store = store

    async def handle(self, request: web.Request, fault: FaultKind | None) -> web.Response:
        """Store one upload, or refuse it the way S3 would."""
        slot = _slot_from_path(request)
        if slot is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if "Authorization" in request.headers:
            # S3 refuses a second auth mechanism; for us it would also leak the API token to the bucket.
            return self._malformed(slot, "Authorization: pre-signed URLs must not carry an Authorization header")
        refusal = self._check_signature(request, slot)
        if refusal is not None:
            return refusal
        if request.content_type != slot.kind.content_type:
            got = request.content_type or "none"
            return self._malformed(slot, f"Content-Type: expected {slot.kind.content_type} for {slot.kind}, got {got}")
        data = await request.read()
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
        record = UploadRecord(
            event_id=slot.event_id,
            kind=slot.kind,
            seq=slot.seq,
            content_type=request.content_type,
            data=data,
            etag=etag,
            valid_media=looks_like(slot.kind, data),
            fault=fault,
        )
        self._records.uploads.append(record)
        self._store.put(slot, record)
        self._records.notify(record)
        return web.Response(status=200, headers={"ETag": etag})

    def _check_signature(self, request: web.Request, slot: MediaSlot) -> web.Response | None:
        expires, signature = request.query.get("expires", ""), request.query.get("signature", "")
        if not self._signer.upload_signature_ok(slot, expires, signature):
            return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if time.time() >= int(expires):
            return s3_error(403, "AccessDenied", "Request has expired")
        return None

    def _malformed(self, slot: MediaSlot, message: str) -> web.Response:
        self._records.malformed.append(
            MalformedRecord(endpoint=Endpoint.UPLOAD, status=400, message=message, event_id=slot.event_id)
        )
        return s3_error(400, "InvalidArgument", message)


def _slot_from_path(request: web.Request) -> MediaSlot | None:
    try:
        kind = MediaKind(request.match_info["kind"])
        seq = int(request.match_info["seq"])
    except ValueError:
        return None
    return MediaSlot(request.match_info["event_id"], kind, seq)


class CallbackEndpoint:
    """`PUT /partner/v1/events/{event_id}/uploads/callback?seq=N&type=...&access_token=...`."""

    def __init__(self, records: Records, signer: MediaSigner, store: MediaStore) -> None:
        """Record into `records`, check tokens with `signer` and uploads in `store`."""
        self._records = records
        self._signer = signer
        self._store = store

    async def handle(self, request: web.Request, fault: FaultKind | None) -> web.Response:
        """Record one callback; refuse it when its upload has not arrived yet."""
        event_id = request.match_info["event_id"]
        try:
            slot = _callback_slot(event_id, request.query.get("type"), request.query.get("seq"))
        except ValueError as err:
            return self._malformed(event_id, 400, str(err))
        if not self._signer.callback_token_ok(slot, request.query.get("access_token", "")):
            return api_error(401, "Invalid token or credentials")
        await request.read()  # The spec defines no callback body; whatever comes is drained and ignored.
        uploaded = self._store.get(slot) is not None
        status = 200 if uploaded else 409
        record = CallbackRecord(
            event_id=slot.event_id,
            kind=slot.kind,
            seq=slot.callback_seq,
            upload_preceded=uploaded,
            status=status,
            fault=fault,
        )
        self._records.callbacks.append(record)
        self._records.notify(record)
        if not uploaded:
            return self._malformed(event_id, 409, f"{slot.kind}: callback before the upload arrived")
        return web.json_response({})

    def _malformed(self, event_id: str, status: int, message: str) -> web.Response:
        self._records.malformed.append(
            MalformedRecord(endpoint=Endpoint.CALLBACK, status=status, message=message, event_id=event_id)
        )
        return api_error(status, message)


def _callback_slot(event_id: str, kind_text: str | None, seq_text: str | None) -> MediaSlot:
    """The slot a callback names; snapshots carry `seq`, clips do not (as in the spec's example)."""
    try:
        kind = MediaKind(kind_text or "")
    except ValueError:
        raise ValueError(f"type: expected one of {', '.join(MediaKind)}, got {kind_text!r}") from None
    if kind is not MediaKind.SNAPSHOT:
        if seq_text is not None:
            raise ValueError(f"seq: {kind} callbacks carry no seq")
        return MediaSlot(event_id, kind)
    if seq_text is None or not (seq_text.isascii() and seq_text.isdigit()):
        raise ValueError(f"seq: expected a snapshot number, got {seq_text!r}")
    return MediaSlot(event_id, kind, int(seq_text))
