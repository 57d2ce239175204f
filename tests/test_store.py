"""What the outbox keeps on disk: its records in Home Assistant's `Store`, its snapshots in a folder with a budget."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.chekt.api import EventStatus, EventType, MediaKind, UploadTarget
from custom_components.chekt.media import MediaFile, MediaStore, NewFile, SnapshotSeries
from custom_components.chekt.outgoing import OutgoingEvent
from custom_components.chekt.store import (
    SAVE_DELAY,
    STORAGE_VERSION,
    OutboxStore,
    Record,
    snapshot_file_name,
    storage_key,
)
from tests.common import make_jpeg

ENTRY_ID = "01TESTENTRY"
REMOVED = object()
SNAPSHOT_URL = "https://bucket.example/upload/1?X-Amz-Date=20261127T120000Z&X-Amz-Expires=900&X-Amz-Signature=abc"
CALLBACK_URL = "https://api.chekt.test/partner/v1/events/1/uploads/callback?seq=0&type=snapshot&access_token=t"


def outgoing(**overrides: Any) -> OutgoingEvent:
    fields: dict[str, Any] = {
        "source": "subentry-1",
        "event_type": EventType.ALARM,
        "event_status": EventStatus.ACTIVE,
        "event_time": dt_util.parse_datetime("2026-11-27T12:00:00.123456+00:00"),
        "location_id": "LOC1",
        "camera_id": "CAM-front",
        "recorder_id": "REC1",
        "snapshot_count": 2,
        "upload_short_mp4": True,
        "camera_entity_id": "camera.front",
        "payload": {"entity_id": "binary_sensor.front_motion", "friendly_name": "Front motion"},
    }
    return OutgoingEvent(**(fields | overrides))


def record(event_id: str = "1795790000000001", **overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "event": outgoing(),
        "created_at": dt_util.parse_datetime("2026-11-27T12:00:00.200000+00:00"),
    }
    return Record(**(fields | overrides))


def stored(records: list[Any], **data: Any) -> dict[str, Any]:
    """The `.storage` file of the test entry's outbox, as `hass_storage` holds it."""
    return {"version": STORAGE_VERSION, "key": storage_key(ENTRY_ID), "data": {"records": records, **data}}


# --- records ---


def test_a_record_survives_the_round_trip_through_json() -> None:
    original = record(
        attempts=3,
        sent_payload={"entity_id": "binary_sensor.front_motion", "late": True, "delay_seconds": 400},
        targets=[
            UploadTarget(MediaKind.SNAPSHOT, upload_put_url=SNAPSHOT_URL, callback_put_url=CALLBACK_URL, seq=1),
            UploadTarget(MediaKind.SHORT_MP4, upload_put_url=SNAPSHOT_URL, callback_put_url=CALLBACK_URL),
        ],
        accepted_at=dt_util.parse_datetime("2026-11-27T12:00:01+00:00"),
    )

    restored = Record.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored == original
    assert restored.accepted
    assert restored.targets is not None
    assert restored.targets[0].expires_at == dt_util.parse_datetime("2026-11-27T12:15:00+00:00")


def test_a_waiting_record_survives_the_round_trip_and_names_its_media() -> None:
    original = record()

    restored = Record.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored == original
    assert not restored.accepted
    assert snapshot_file_name(restored.event_id, 0) == "1795790000000001_snapshot_0.jpg"
    # Records stored by earlier versions named their snapshot files: the names are the same, the map is ignored.
    stored = original.to_dict() | {"media": {"0": "1795790000000001_snapshot_0.jpg"}}
    assert Record.from_dict(stored) == original


# --- the store ---


async def test_load_sorts_by_event_id_and_restores_the_counters(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    hass_storage[storage_key(ENTRY_ID)] = stored(
        [record("30").to_dict(), record("4").to_dict(), record("200").to_dict()],
        events_sent=7,
        reported={"open_alarms": ["CAM-front"]},
    )

    loaded = await OutboxStore(hass, ENTRY_ID).async_load()

    assert [r.event_id for r in loaded.records] == ["4", "30", "200"]
    assert loaded.events_sent == 7
    assert loaded.reported == {"open_alarms": ["CAM-front"]}


async def test_load_of_nothing_is_an_empty_outbox(hass: HomeAssistant, hass_storage: dict[str, Any]) -> None:
    loaded = await OutboxStore(hass, ENTRY_ID).async_load()

    assert (loaded.records, loaded.events_sent, loaded.reported) == ([], 0, None)


@pytest.mark.parametrize(
    "damage",
    [
        {"event_id": REMOVED},
        {"created_at": "not a time"},
        {"attempts": "several"},
        {"targets": [{"kind": "hologram", "seq": 0, "upload_put_url": "u", "callback_put_url": "c"}]},
        {"event": {"event_type": "alarm"}},
        {"clips": {"hologram": "x.mp4"}},
        {"clips": ["x.mp4"]},
        {"targets": "everything"},
    ],
    ids=[
        "no-id",
        "unreadable-time",
        "attempts-not-a-number",
        "unknown-media-kind",
        "event-incomplete",
        "clip-kind-unknown",
        "clips-not-a-mapping",
        "targets-not-a-list",
    ],
)
async def test_a_damaged_record_is_skipped_and_never_fatal(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    damage: dict[str, Any],
) -> None:
    damaged = record("2").to_dict() | damage
    damaged = {key: value for key, value in damaged.items() if value is not REMOVED}
    hass_storage[storage_key(ENTRY_ID)] = stored([record("1").to_dict(), damaged, record("3").to_dict()])

    loaded = await OutboxStore(hass, ENTRY_ID).async_load()

    assert [r.event_id for r in loaded.records] == ["1", "3"]
    assert len([r for r in caplog.records if "Skipping a damaged event" in r.getMessage()]) == 1


async def test_saves_are_batched_and_write_the_state_at_write_time(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    store = OutboxStore(hass, ENTRY_ID)
    state: dict[str, Any] = {"records": [], "events_sent": 0}
    calls = 0

    def snapshot() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return dict(state)

    for sent in range(1, 50):
        state["events_sent"] = sent
        store.schedule_save(snapshot)
    await hass.async_block_till_done()
    assert storage_key(ENTRY_ID) not in hass_storage  # not yet: saves are batched

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done()

    assert calls == 1
    assert hass_storage[storage_key(ENTRY_ID)]["data"]["events_sent"] == 49
    # The next change is saved again.
    state["events_sent"] = 50
    store.schedule_save(snapshot)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2 * SAVE_DELAY + 2))
    await hass.async_block_till_done()
    assert hass_storage[storage_key(ENTRY_ID)]["data"]["events_sent"] == 50


async def test_save_now_writes_at_once_and_replaces_a_pending_save(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    store = OutboxStore(hass, ENTRY_ID)
    store.schedule_save(lambda: {"records": [], "events_sent": 1})

    await store.async_save_now({"records": [], "events_sent": 2})
    assert hass_storage[storage_key(ENTRY_ID)]["data"]["events_sent"] == 2
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done()
    assert hass_storage[storage_key(ENTRY_ID)]["data"]["events_sent"] == 2

    await store.async_remove()
    assert storage_key(ENTRY_ID) not in hass_storage


# --- the media folder ---


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "media"


async def listing(hass: HomeAssistant, folder: Path) -> list[str] | None:
    def names() -> list[str] | None:
        return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else None

    return await hass.async_add_executor_job(names)


async def test_media_over_budget_evicts_the_oldest_files_first(hass: HomeAssistant, folder: Path) -> None:
    jpeg = make_jpeg()
    media = MediaStore(hass, folder, budget_bytes=2 * len(jpeg))

    assert (await media.async_write([NewFile("1", "1_snapshot_0.jpg", jpeg)])).evicted == []
    assert (await media.async_write([NewFile("2", "2_snapshot_0.jpg", jpeg)])).evicted == []
    evicted = (await media.async_write([NewFile("3", "3_snapshot_0.jpg", jpeg)])).evicted

    assert evicted == [MediaFile("1", "1_snapshot_0.jpg", len(jpeg))]
    assert await listing(hass, folder) == ["2_snapshot_0.jpg", "3_snapshot_0.jpg"]
    assert (media.count, media.total_bytes) == (2, 2 * len(jpeg))
    assert await media.async_read("3_snapshot_0.jpg") == jpeg
    assert await media.async_read("1_snapshot_0.jpg") is None


async def test_a_file_bigger_than_the_budget_is_kept_alone(hass: HomeAssistant, folder: Path) -> None:
    jpeg = make_jpeg()
    media = MediaStore(hass, folder, budget_bytes=len(jpeg) // 2)

    assert (await media.async_write([NewFile("1", "1_snapshot_0.jpg", jpeg)])).evicted == []
    evicted = (await media.async_write([NewFile("2", "2_snapshot_0.jpg", jpeg)])).evicted

    assert [file.name for file in evicted] == ["1_snapshot_0.jpg"]
    assert await listing(hass, folder) == ["2_snapshot_0.jpg"]


async def test_a_batch_writes_what_it_can_and_names_what_it_could_not(hass: HomeAssistant, folder: Path) -> None:
    jpeg = make_jpeg()
    media = MediaStore(hass, folder, budget_bytes=2 * len(jpeg))
    await media.async_write([NewFile("1", "1_snapshot_0.jpg", jpeg)])

    # A name the folder cannot take (a missing subfolder) fails alone; the batch is never evicted for itself.
    result = await media.async_write(
        [
            NewFile("2", "2_snapshot_0.jpg", jpeg),
            NewFile("3", "missing/3_snapshot_0.jpg", jpeg),
            NewFile("4", "4_snapshot_0.jpg", jpeg),
        ]
    )

    assert list(result.failed) == ["missing/3_snapshot_0.jpg"]
    assert isinstance(result.failed["missing/3_snapshot_0.jpg"], OSError)
    assert [file.name for file in result.evicted] == ["1_snapshot_0.jpg"]
    assert await listing(hass, folder) == ["2_snapshot_0.jpg", "4_snapshot_0.jpg"]
    assert (media.count, media.total_bytes) == (2, 2 * len(jpeg))
    assert (await media.async_write([])).evicted == []


async def test_load_keeps_what_is_referred_to_and_deletes_the_rest(hass: HomeAssistant, folder: Path) -> None:
    jpeg = make_jpeg()

    def leave_files() -> None:
        folder.mkdir(parents=True)
        for name in ("20_snapshot_0.jpg", "10_snapshot_1.jpg", "15_snapshot_0.jpg", ".16_snapshot_0.jpg.partial"):
            (folder / name).write_bytes(jpeg)

    await hass.async_add_executor_job(leave_files)
    media = MediaStore(hass, folder, budget_bytes=10 * len(jpeg))

    await media.async_load(keep={"20_snapshot_0.jpg", "10_snapshot_1.jpg", "99_snapshot_0.jpg"})

    assert await listing(hass, folder) == ["10_snapshot_1.jpg", "20_snapshot_0.jpg"]
    assert media.has("10_snapshot_1.jpg")
    assert not media.has("99_snapshot_0.jpg")
    # Oldest first (by name: event ids grow), and whose each is, read from its name.
    media.budget_bytes = len(jpeg)
    evicted = (await media.async_write([NewFile("30", "30_snapshot_0.jpg", jpeg)])).evicted
    assert [(file.event_id, file.name) for file in evicted] == [
        ("10", "10_snapshot_1.jpg"),
        ("20", "20_snapshot_0.jpg"),
    ]


async def test_a_file_gone_from_under_the_store_reads_as_nothing(hass: HomeAssistant, folder: Path) -> None:
    media = MediaStore(hass, folder, budget_bytes=1 << 20)
    await media.async_write([NewFile("1", "1_snapshot_0.jpg", make_jpeg())])
    await hass.async_add_executor_job((folder / "1_snapshot_0.jpg").unlink)

    assert await media.async_read("1_snapshot_0.jpg") is None
    await media.async_delete(["1_snapshot_0.jpg", "never_stored.jpg"])
    assert media.count == 0


async def test_remove_all_deletes_the_folder_and_copes_without_one(hass: HomeAssistant, folder: Path) -> None:
    media = MediaStore(hass, folder, budget_bytes=1 << 20)
    await media.async_remove_all()  # nothing there yet
    await media.async_write([NewFile("1", "1_snapshot_0.jpg", make_jpeg())])

    await media.async_remove_all()

    assert await listing(hass, folder) is None
    assert media.count == 0
    await media.async_load(keep=set())
    assert media.count == 0


async def test_a_series_settles_at_once_for_a_snapshot_it_does_not_take(hass: HomeAssistant) -> None:
    images: list[tuple[int, bytes | None]] = []

    def start_task(coro: Any, name: str) -> Any:
        return hass.async_create_background_task(coro, name)

    series = SnapshotSeries(
        hass,
        "camera.nowhere",
        1,
        0.01,
        start_task=start_task,
        on_image=lambda seq, image: images.append((seq, image)),
    )
    await series.settled(5)
    await series.settled(0)

    assert images == [(0, None)]  # the camera does not exist: the snapshot failed, and said so
    series.cancel()
