"""Configuration: YAML in (``load``), validated by ``Reader`` and the section rules
(``validate``, ``shape``), frozen dataclasses out (``settings``); the web config file (``web``)
and the spellings of every secret (``secrets``)."""

from .demo import demo_config, demo_mapping
from .settings import Config, DmsSettings, EndpointSettings, MetricsSettings, TlsSettings
from .shape import Envelope, GateSettings, LoginShape, Paging, TokenHeader
from .validate import config_from_mapping, load_config

__all__ = [
    "Config",
    "DmsSettings",
    "EndpointSettings",
    "Envelope",
    "GateSettings",
    "LoginShape",
    "MetricsSettings",
    "Paging",
    "TlsSettings",
    "TokenHeader",
    "config_from_mapping",
    "demo_config",
    "demo_mapping",
    "load_config",
]
