"""The operator console: server-rendered pages over the store, and edits kept in a state file.

``state`` holds the edits and writes them atomically; ``source`` builds the running config from
the config file and the edits (also on reload); ``service`` validates, keeps and applies an edit;
``devices`` searches the devices table; ``pages`` (GET) and ``edits`` (POST) are the aiohttp
handlers, ``frame`` what every page shares (navigation, the state on top, rendering), ``views``
mounts them under ``/console/``, and ``templates`` and ``static`` are the pages' HTML, CSS and
script. See docs/console.md.
"""

from __future__ import annotations

import os

from .service import Console, EditError
from .source import ConfigSource
from .state import Edits, StateFile
from .views import add_console

__all__ = [
    "ConfigSource",
    "Console",
    "EditError",
    "Edits",
    "StateFile",
    "add_console",
    "default_state_path",
]


def default_state_path(config_file: str) -> str:
    """The state file next to the config: ``dms.yml`` -> ``dms.console.json``."""
    return os.path.splitext(config_file)[0] + ".console.json"
