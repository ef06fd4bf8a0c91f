"""Prometheus exporter for the Harmonic DMS (Distribution Management System)."""

__version__ = "0.1.0"
