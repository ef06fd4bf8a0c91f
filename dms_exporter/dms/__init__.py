"""Everything that talks to the DMS: the HTTP client (``client``) and its login (``auth``)."""

from .client import DmsClient

__all__ = ["DmsClient"]
