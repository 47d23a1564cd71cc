"""routes: a job's route, the account each chunk and message went through, paused accounts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:10:00

`job.route`: the route a job was submitted to (its `account` is the route's first). `chunk.account`: the account a
route job's chunk goes through (chosen when it is claimed, moved only when that account could not have accepted
it). `message.account`: the account a route job's message was handed to (NULL: the job's account).
`account_pause`: accounts whose last try was refused for balance, credentials or client IP.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('job', sa.Column('route', sa.String(length=64), nullable=True))
    op.add_column('chunk', sa.Column('account', sa.String(length=64), nullable=True))
    op.add_column('message', sa.Column('account', sa.String(length=64), nullable=True))
    op.create_table(
        'account_pause',
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('paused_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account'),
    )


def downgrade() -> None:
    op.drop_table('account_pause')
    op.drop_column('message', 'account')
    op.drop_column('chunk', 'account')
    op.drop_column('job', 'route')
