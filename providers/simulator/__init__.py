"""Provider simulator: impersonates Emay voice and voice-SMS over real HTTP, with faults and pushes."""
from providers.simulator.app import create_app, encrypt_push, serve
from providers.simulator.config import EmayApp, SimConfig
from providers.simulator.emay import join_outcome, md5_sign, voice_outcome
from providers.simulator.state import Faults, SimState

__all__ = [
    "EmayApp",
    "Faults",
    "SimConfig",
    "SimState",
    "create_app",
    "encrypt_push",
    "join_outcome",
    "md5_sign",
    "serve",
    "voice_outcome",
]
