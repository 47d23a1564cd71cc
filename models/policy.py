"""Sending-policy tables: the suppression list (opt-outs and operator blocks) and the per-recipient counts that
frequency caps are checked against (DESIGN §9 "Sending policy")."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.tables import utcnow

#: the scope of a suppression that holds for every account
EVERY_ACCOUNT = "*"


class Suppression(SQLModel, table=True):
    """A mobile that must not be sent to: for one account (`scope` = its name) or for all (`*`)."""

    __table_args__ = (UniqueConstraint("scope", "mobile", name="uq_suppression_scope_mobile"),
                      Index("ix_suppression_created", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=64)
    mobile: str = Field(max_length=32)  # the phone's key (providers.sending_rules.mobile_key)
    reason: str | None = Field(default=None, max_length=255)
    source: str = Field(max_length=16)  # api | cli | inbound
    created_at: datetime = Field(default_factory=utcnow)


class FrequencyCount(SQLModel, table=True):
    """How many messages one account handed the provider for one mobile in one calendar period (a day, an
    hour); rows of a period that is over are pruned."""

    __tablename__ = "frequency_count"
    __table_args__ = (Index("ix_frequency_count_ends", "ends_at"),)

    account: str = Field(max_length=64, primary_key=True)
    period: str = Field(max_length=16, primary_key=True)  # d2026-12-04 | h2026-12-04T19, in the account's zone
    mobile: str = Field(max_length=32, primary_key=True)
    n: int = 0
    ends_at: datetime
