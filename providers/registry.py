"""Provider name → provider object; the only place that lists them."""
from __future__ import annotations

import importlib
from functools import lru_cache

from providers.base import Provider

# name -> "module:Class"
PROVIDER_CLASSES = {
    "emay_voice": "providers.emay_voice:EmayVoice",
    "emay_voice_sms": "providers.emay_voice_sms:EmayVoiceSms",
    "emay_ims": "providers.emay_ims:EmayIms",
    "qyxs_sms": "providers.qyxs_sms:QyxsSms",
    "ihuyi_mms": "providers.ihuyi_mms:IhuyiMms",
}


@lru_cache(maxsize=1)
def _providers() -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    for name, target in PROVIDER_CLASSES.items():
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not built yet
        found[name] = getattr(module, class_name)()
    return found


def get_provider(name: str) -> Provider | None:
    """The provider called `name`, or None when msgrelay does not (yet) support it."""
    return _providers().get(name)


def supported() -> list[str]:
    """Names of the providers this build can send through."""
    return sorted(_providers())
