"""The face of msgrelay for people: the `msgrelay` command, the demo, process supervision and progress bars.

It sits above `tasks/` and `api/` (it starts them and publishes through them); nothing below imports it.
"""
from msgrelay.cli.commands import app, main

__all__ = ["app", "main"]
