"""Provider simulator: impersonates every registered vendor's HTTP API (see ``registry``), with faults and pushes."""
from providers.simulator.app import create_app, serve
from providers.simulator.config import SimConfig
from providers.simulator.emay import EmayApp, encrypt_push, join_outcome, md5_sign, voice_outcome
from providers.simulator.registry import config_from_accounts
from providers.simulator.state import Faults, SimState

__all__ = [
    "EmayApp",
    "Faults",
    "SimConfig",
    "SimState",
    "config_from_accounts",
    "create_app",
    "encrypt_push",
    "join_outcome",
    "md5_sign",
    "serve",
    "voice_outcome",
]
