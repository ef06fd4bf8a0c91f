"""Which metric families are exported: presets and per-family switches (config ``metrics:``).

``full`` (the default) exports every family. ``lean`` keeps, per device, only its info, its
connection state and its last contact (and one series per active alarm), and leaves the rest to
fleet-level counts (devices by model, site and state; devices by control mode and authorization
state; authorized devices per service and source; destinations by type and status), which both
presets export. ``metrics.disable`` / ``metrics.enable`` switch single families off or back on
over the preset. The exporter's health families are always exported.
"""

from __future__ import annotations

from collections.abc import Mapping

from .families import RenderContext
from .process import process_family_names
from .render import group_families

__all__ = ["PRESETS", "disabled_families", "switchable_families"]

#: Preset -> the families it switches off.
PRESETS: Mapping[str, frozenset[str]] = {
    "full": frozenset(),
    "lean": frozenset(
        {
            "dms_device_control_mode",  # dms_devices_by_control_mode instead
            "dms_device_authorization_state",  # dms_devices_by_authorization_state
            "dms_device_group_member",  # dms_group_devices
            "dms_device_authorized_services",  # dms_service_authorized_devices
            "dms_destination",  # dms_destinations (one or more per device)
            "dms_destination_status",  # dms_destinations
            "dms_destination_enabled",  # dms_destinations{status="disabled"}
        }
    ),
}


def switchable_families() -> dict[str, str]:
    """Every family ``metrics:`` can switch, by OpenMetrics and by text name -> OpenMetrics
    name: the DMS data families (every setting included) and the process families."""
    names: dict[str, str] = {}
    for group in ("system", "devices", "authorization", "destinations", "alarms"):
        for retrieval in ("active", "all"):
            ctx = RenderContext(alarm_retrieval=retrieval)  # type: ignore[arg-type]
            for family in group_families(group, {}, ctx):
                names[family.name] = names[family.text_name] = family.name
    for name, text_name in process_family_names():
        names[name] = names[text_name] = name
    return names


def disabled_families(preset: str, disable: set[str], enable: set[str]) -> frozenset[str]:
    """The OpenMetrics names of the families to leave out."""
    return frozenset((PRESETS[preset] | disable) - enable)
