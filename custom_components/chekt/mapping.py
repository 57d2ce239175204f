"""The typed view of what the user mapped: cameras and alarm panels with their CHeKT ids (the subentries)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .const import (
    CONF_ALARM_ENTITY_IDS,
    CONF_CAMERA_ENTITY_ID,
    CONF_CAMERA_ID,
    CONF_LOCATION_ID,
    CONF_PANEL_ENTITY_ID,
    CONF_RECORDER_ID,
    CONF_SIGNAL_MONITORING_CENTER,
    CONF_SNAPSHOT_COUNT,
    CONF_TROUBLE_ON_UNAVAILABLE,
    CONF_UPLOAD_EVENT_MP4,
    CONF_UPLOAD_SHORT_MP4,
    DEFAULT_SIGNAL_MONITORING_CENTER,
    DEFAULT_SNAPSHOT_COUNT,
    SUBENTRY_ALARM_PANEL,
    SUBENTRY_CAMERA,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraMapping:
    """A `camera` subentry: a Home Assistant camera, the sensors that raise its alarms, and its CHeKT ids."""

    subentry_id: str
    camera_entity_id: str
    location_id: str
    camera_id: str
    recorder_id: str | None
    alarm_entity_ids: tuple[str, ...]
    signal_monitoring_center: bool
    snapshot_count: int
    upload_short_mp4: bool
    upload_event_mp4: bool
    trouble_on_unavailable: bool

    @classmethod
    def from_data(cls, subentry_id: str, data: Mapping[str, Any]) -> CameraMapping:
        """Read a camera subentry's stored data, with the documented defaults for what is absent."""
        return cls(
            subentry_id=subentry_id,
            camera_entity_id=data[CONF_CAMERA_ENTITY_ID],
            location_id=data[CONF_LOCATION_ID],
            camera_id=data[CONF_CAMERA_ID],
            recorder_id=data.get(CONF_RECORDER_ID) or None,
            alarm_entity_ids=tuple(data.get(CONF_ALARM_ENTITY_IDS, ())),
            signal_monitoring_center=data.get(CONF_SIGNAL_MONITORING_CENTER, DEFAULT_SIGNAL_MONITORING_CENTER),
            snapshot_count=int(data.get(CONF_SNAPSHOT_COUNT, DEFAULT_SNAPSHOT_COUNT)),
            upload_short_mp4=data.get(CONF_UPLOAD_SHORT_MP4, False),
            upload_event_mp4=data.get(CONF_UPLOAD_EVENT_MP4, False),
            trouble_on_unavailable=data.get(CONF_TROUBLE_ON_UNAVAILABLE, True),
        )

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """The camera and its alarm entities: everything whose state matters to this mapping."""
        return (self.camera_entity_id, *self.alarm_entity_ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class PanelMapping:
    """An `alarm_panel` subentry: an alarm control panel whose arming and alarms are reported."""

    subentry_id: str
    panel_entity_id: str
    location_id: str
    camera_id: str
    signal_monitoring_center: bool

    @classmethod
    def from_data(cls, subentry_id: str, data: Mapping[str, Any]) -> PanelMapping:
        """Read an alarm panel subentry's stored data."""
        return cls(
            subentry_id=subentry_id,
            panel_entity_id=data[CONF_PANEL_ENTITY_ID],
            location_id=data[CONF_LOCATION_ID],
            camera_id=data[CONF_CAMERA_ID],
            signal_monitoring_center=data.get(CONF_SIGNAL_MONITORING_CENTER, DEFAULT_SIGNAL_MONITORING_CENTER),
        )


@dataclass(frozen=True, slots=True)
class Mappings:
    """Every mapping of one config entry, indexed the way state changes look them up."""

    cameras: tuple[CameraMapping, ...] = ()
    panels: tuple[PanelMapping, ...] = ()

    @classmethod
    def from_subentries(cls, subentries: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Mappings:
        """Build from `(subentry_id, subentry_type, data)` triples; unknown types are ignored."""
        cameras: list[CameraMapping] = []
        panels: list[PanelMapping] = []
        for subentry_id, subentry_type, data in subentries:
            if subentry_type == SUBENTRY_CAMERA:
                cameras.append(CameraMapping.from_data(subentry_id, data))
            elif subentry_type == SUBENTRY_ALARM_PANEL:
                panels.append(PanelMapping.from_data(subentry_id, data))
        return cls(tuple(cameras), tuple(panels))

    def camera_by_entity(self, camera_entity_id: str) -> CameraMapping | None:
        """The mapping of a `camera.*` entity, if it is mapped."""
        return next((c for c in self.cameras if c.camera_entity_id == camera_entity_id), None)

    def tracked_entity_ids(self) -> set[str]:
        """Every entity whose state changes can produce an event."""
        tracked = {entity_id for camera in self.cameras for entity_id in camera.entity_ids}
        return tracked | {panel.panel_entity_id for panel in self.panels}
