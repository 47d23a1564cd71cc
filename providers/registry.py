"""The providers msgrelay sends through: the only list of them. It also builds the accounts union (each
provider's account type, told apart by `provider`) and the list of provider names."""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from providers.base import AccountBase, Provider
from providers.emay.ims import EmayIms
from providers.emay.voice import EmayVoice
from providers.emay.voice_sms import EmayVoiceSms
from providers.ihuyi.mms import IhuyiMms
from providers.qyxs.sms import QyxsSms

#: to add a provider, write its module and add its class here (docs/ADDING_PROVIDERS.md)
PROVIDER_CLASSES: tuple[type[Provider], ...] = (EmayVoice, EmayVoiceSms, EmayIms, IhuyiMms, QyxsSms)

_PROVIDERS: dict[str, Provider] = {cls.name: cls() for cls in PROVIDER_CLASSES}
PROVIDER_NAMES: tuple[str, ...] = tuple(_PROVIDERS)
#: each account type once (one Emay account type serves three providers)
ACCOUNT_TYPES: tuple[type[AccountBase], ...] = tuple(dict.fromkeys(cls.account_type for cls in PROVIDER_CLASSES))
#: an account of any provider, parsed by its `provider` field
Account = Annotated[Union[ACCOUNT_TYPES], Field(discriminator="provider")]  # type: ignore[valid-type]


def get_provider(name: str) -> Provider | None:
    """The provider called `name`, or None when msgrelay does not support it."""
    return _PROVIDERS.get(name)


def supported() -> list[str]:
    """Names of the providers this build can send through."""
    return sorted(_PROVIDERS)


def provider_of(account: Any) -> Provider:
    """The provider of a parsed account (its `provider` was checked when the file was read)."""
    return _PROVIDERS[account.provider]
