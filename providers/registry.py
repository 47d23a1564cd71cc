"""Provider name → provider object; the only place that lists them."""
from __future__ import annotations

from functools import lru_cache

from providers.base import Provider


@lru_cache(maxsize=1)
def _providers() -> dict[str, Provider]:
    from providers.emay_voice import EmayVoice
    from providers.emay_voice_sms import EmayVoiceSms

    return {p.name: p for p in (EmayVoice(), EmayVoiceSms())}


def get_provider(name: str) -> Provider | None:
    """The provider called `name`, or None when msgrelay does not (yet) support it."""
    return _providers().get(name)


def supported() -> list[str]:
    """Names of the providers this build can send through."""
    return sorted(_providers())
