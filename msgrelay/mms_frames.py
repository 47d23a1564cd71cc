"""MMS frames from CLI options (`--frame text=… --frame image=path.jpg`) — to be built."""
from __future__ import annotations

from providers.errors import InvalidInput


def frames_from_cli(items: list[str]) -> list:
    """ihuyi frames from --frame options; files are read and base64-encoded."""
    raise InvalidInput("--frame", "MMS frames are not supported yet")
