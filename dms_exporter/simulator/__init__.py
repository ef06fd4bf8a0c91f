"""A simulated Harmonic DMS: a real aiohttp server with a deterministic population, dynamics and
faults on demand. Imports nothing from the rest of ``dms_exporter``.

    async with start_simulator(devices=50, seed=1, frozen=True) as sim:
        sim.base_url, sim.add_fault("devices", "status", status=503, count=1)
"""

from .catalog import ENDPOINTS
from .faults import FAULT_KINDS, FaultError, parse_fault_spec
from .runner import Simulator, start_simulator
from .world import World

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "FaultError",
    "Simulator",
    "World",
    "parse_fault_spec",
    "start_simulator",
]
