"""The DMS vocabulary the simulator speaks: enum values, models, alarm codes, endpoint names."""

from __future__ import annotations

from typing import NamedTuple

#: Endpoint names (fault targets and request-count keys), in API table order.
# Its own copy, not dms_exporter.model's, on purpose: so they cannot share a misreading of the API.
ENDPOINTS: tuple[str, ...] = (
    "login",
    "system",
    "devices",
    "groups",
    "services",
    "authorization_sets",
    "schedule_authorizations",
    "authorizations",
    "destinations",
    "alarms",
)

CONNECTION_STATES = ("ONLINE", "OFFLINE", "UNKNOWN", "NEVER_CONNECTED")
AUTHORIZATION_STATES = ("AUTHORIZED", "PARTIALLY_AUTHORIZED", "DEAUTHORIZED")


class Model(NamedTuple):
    """A device model: its type, serial-number prefix and firmware versions (newest first)."""

    name: str
    device_type: str
    serial_prefix: str
    firmware: tuple[str, ...]
    weight: int


MODELS: tuple[Model, ...] = (
    Model("ProView 7100", "IRD", "PV71K", ("4.3.3.0.52", "4.3.2.0.41", "4.2.0.0.18"), 25),
    Model("ProView 8130", "IRD", "PV81K", ("1.8.1.0.26", "1.8.0.0.14", "1.3.0.0.25"), 35),
    Model("ProView 8140", "IRD", "PV84K", ("1.8.1.0.26", "1.8.0.0.14", "1.7.2.0.33"), 20),
    Model("XOS Edge", "XOS_EDGE", "XOSE1", ("1.14.0.0.31", "1.12.2.0.7"), 20),
)


class AlarmCode(NamedTuple):
    """An alarm code: who raises it, its text, and the severities it comes with."""

    source: str  # DEVICE | DMS
    description: str
    recovery_tip: str
    severities: tuple[str, ...]


ALARM_CODES: dict[str, AlarmCode] = {
    "SIGNAL_LOSS": AlarmCode("DEVICE", "Input signal lost", "Check LNB and cabling", ("CRITICAL",)),
    "TS_SYNC_LOSS": AlarmCode(
        "DEVICE",
        "Transport stream sync lost",
        "Check the input carrier and the modulation settings",
        ("MAJOR", "CRITICAL"),
    ),
    "CC_ERRORS": AlarmCode(
        "DEVICE",
        "Continuity counter errors",
        "Check the input signal quality (C/N, BER)",
        ("MINOR", "WARNING"),
    ),
    "PID_MISSING": AlarmCode(
        "DEVICE",
        "Expected PID missing",
        "Check the service's PID mapping at the uplink",
        ("MAJOR", "MINOR"),
    ),
    "GBE_LINK_DOWN": AlarmCode(
        "DEVICE",
        "GbE link down",
        "Check the Ethernet cable and the switch port",
        ("CRITICAL", "MAJOR"),
    ),
    "DEVICE_NOT_RESPONDING": AlarmCode(
        "DMS",
        "Device not responding to the DMS",
        "Check the device's power and return path",
        ("MAJOR",),
    ),
    "OTA_COMMAND_FAILED": AlarmCode(
        "DMS",
        "Over-the-air command not acknowledged",
        "Resend the command; check the OTA carrier",
        ("WARNING", "MINOR"),
    ),
    "AUTHORIZATION_FAILED": AlarmCode(
        "DMS",
        "Authorization update failed",
        "Check the authorization set and the device's unit address",
        ("MINOR", "INFO"),
    ),
}

DEVICE_ALARM_CODES = tuple(c for c, v in ALARM_CODES.items() if v.source == "DEVICE")
DMS_ALARM_CODES = tuple(c for c, v in ALARM_CODES.items() if v.source == "DMS")

#: Values no client knows, one per enum field, for the ``unknown_enums`` fault.
UNKNOWN_ENUMS: dict[str, str] = {
    "connectionState": "HIBERNATING",
    "controlMode": "REMOTE",
    "authorizationState": "SUSPENDED",
    "deviceType": "SATELLITE_MODEM",
    "role": "ARBITER",
    "tier": "ULTRA",
    "type": "FIBER",
    "state": "SUSPENDED",
    "source": "SNMP",
    "severity": "CATASTROPHIC",
    "status": "DEGRADED",
    "code": "FAN_FAILURE",
}
