"""reportpage: delivery reports kept a page to a row; rawreport keeps only those still to match

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 08:00:00

Every report was a `rawreport` row (~400 bytes, most of it the provider's record as JSON): at a million
recipients that was about a third of the WAL a job writes. Now a batch of reports (a drained page or more, a
push) is one `reportpage` row: `reports`, each record exactly as received, and `message_ids`, the message each
one settled (null: none yet), in order. PostgreSQL compresses the JSON about tenfold. A report that matched no
message when it came still gets a `rawreport` row, with what matching needs, until a later match settles it.
The `rawreport` rows written before this migration stay as they are.

The downgrade keeps the table: it holds the reports received since the upgrade, and the code before this
migration never reads it. Upgrading again finds it in place.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reportpage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('reports', sa.JSON(), nullable=False),
        sa.Column('message_ids', sa.JSON(), nullable=False),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        if_not_exists=True,
    )
    op.create_index('ix_reportpage_account_received', 'reportpage', ['account', 'received_at'], unique=False,
                    if_not_exists=True)


def downgrade() -> None:
    """Nothing: the reports received since the upgrade stay (see the module's docstring)."""
