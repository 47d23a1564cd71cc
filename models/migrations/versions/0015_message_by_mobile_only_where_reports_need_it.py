"""message by mobile only where its reports need it: `found_by_mobile`, and the mobile index partial on it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 10:30:00

`ix_message_mobile` (migration 0012) finds the message of a report that names a request and a mobile, not our
custom id: the reports of a provider whose ids name a request (qyxs, ihuyi: `ids_name_requests`). Every other
provider's reports carry our custom id, yet each of their messages paid for an entry too: a B-tree insert at a
random place (mobiles come in any order), about 70 bytes of WAL a recipient and its share of page splits. A
message now says at its insert whether its reports find it by mobile, and only those messages have an entry.

Existing rows keep theirs: the column's default is true, so the partial index holds every row the old one held.
On a large PostgreSQL table the new index is built while writes wait; build it beforehand with
`CREATE INDEX CONCURRENTLY ix_message_found_by_mobile ON message (mobile) WHERE found_by_mobile` and this
migration skips it.
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('message', sa.Column('found_by_mobile', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_index('ix_message_found_by_mobile', 'message', ['mobile'], unique=False, if_not_exists=True,
                    postgresql_where=sa.text('found_by_mobile'), sqlite_where=sa.text('found_by_mobile'))
    op.drop_index('ix_message_mobile', table_name='message')


def downgrade() -> None:
    op.create_index('ix_message_mobile', 'message', ['mobile'], unique=False, if_not_exists=True)
    op.drop_index('ix_message_found_by_mobile', table_name='message')
    op.drop_column('message', 'found_by_mobile')  # SQLite ≥ 3.35 in place (a batch copy would lose the triggers)
