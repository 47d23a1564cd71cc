"""message fillfactor 30: a page keeps room for the send's answer and the report, both as HOT updates

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 09:00:00

A message gets two new versions after its insert, the send's answer and its report, each written for a whole
chunk's or batch's rows in one transaction. While the report's transaction runs, the answer's versions are
still the live ones, so a page must hold both of them at once (the insert's versions can be pruned by then).
Each is about a third to a half longer than the inserted row (the provider id, then the provider's state and
description). At fillfactor 40 that did not fit: about a quarter of the reports (48,270 of 200,000 in a run
of `bench_send`, 54 of 200 in `test_send`) moved their row to another page, writing an entry into each of the
four indexes, a lock record and a longer update. At 30 every one is a HOT update: WAL 832 → 705 bytes a
recipient, and the table is no larger (the moved rows had grown it as much).
"""
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':  # pages written from now on; see migration 0005
        op.execute("ALTER TABLE message SET (fillfactor = 30)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE message SET (fillfactor = 40)")
