"""A local CHeKT cloud for tests and demos: token endpoint, Partner Event API, uploads, callbacks, faults.

async with ChektSimulator() as sim:
    sim.add_client("demo", secret="demo-secret")
    ...  # point the client at sim.base_url / sim.token_url, then assert on sim.accepted, sim.uploads ...
"""

from .app import ChektSimulator
from .auth import SigningAlgorithm, SimClient
from .faults import Endpoint, Fault, FaultKind
from .records import (
    CallbackRecord,
    EventOutcome,
    EventRecord,
    FaultRecord,
    MalformedRecord,
    MediaKind,
    Records,
    TokenRequestRecord,
    UploadRecord,
)

__all__ = [
    "CallbackRecord",
    "ChektSimulator",
    "Endpoint",
    "EventOutcome",
    "EventRecord",
    "Fault",
    "FaultKind",
    "FaultRecord",
    "MalformedRecord",
    "MediaKind",
    "Records",
    "SigningAlgorithm",
    "SimClient",
    "TokenRequestRecord",
    "UploadRecord",
]
