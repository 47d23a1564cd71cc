"""audit: operator actions (pause, resume, cancel, suppressions, webhook retries, account resumes) and who did them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00

`audit`: one row per operator action, written in the action's transaction: `key` is the API key's name (or
`api-token`, `local`, `cli`), `action` what was done (`job.pause`, `suppression.add`, …), `target` what it was done
to (`job:42`, `suppression:*:13800000000`, `delivery:7`, `account:voice`), `detail` what it said; never a secret.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=128), nullable=False),
        sa.Column('detail', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_at', 'audit', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_at', table_name='audit')
    op.drop_table('audit')
