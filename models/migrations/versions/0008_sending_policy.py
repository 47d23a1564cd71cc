"""sending policy: a job's validity and window wait, its held-back counts, the suppression list, frequency counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:00:00

`job.valid_until`: what has not reached the provider by then ends `expired` (NOT_SENT_IN_TIME) unsent.
`job.waiting`/`waiting_until`: a send window holds the job until then (the sweeper re-reads the window).
`job.suppressed`/`capped`/`not_sent_in_time`: recipients policy held back, counted in the transactions that
hold them back. `suppression`: mobiles (by key) not to send to, per account or `*`. `frequency_count`: messages
per account, calendar period and mobile, checked against `frequency_cap`.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

HELD = ("suppressed", "capped", "not_sent_in_time")


def upgrade() -> None:
    op.add_column('job', sa.Column('valid_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('job', sa.Column('waiting', sa.String(length=128), nullable=True))
    op.add_column('job', sa.Column('waiting_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index('ix_job_waiting_until', 'job', ['waiting_until'], unique=False)
    for column in HELD:
        op.add_column('job', sa.Column(column, sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.create_table(
        'suppression',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('mobile', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('scope', 'mobile', name='uq_suppression_scope_mobile'),
    )
    op.create_index('ix_suppression_created', 'suppression', ['created_at'], unique=False)
    op.create_table(
        'frequency_count',
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('mobile', sa.String(length=32), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('ends_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account', 'period', 'mobile'),
    )
    op.create_index('ix_frequency_count_ends', 'frequency_count', ['ends_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_frequency_count_ends', table_name='frequency_count')
    op.drop_table('frequency_count')
    op.drop_index('ix_suppression_created', table_name='suppression')
    op.drop_table('suppression')
    for column in reversed(HELD):
        op.drop_column('job', column)
    op.drop_index('ix_job_waiting_until', table_name='job')
    op.drop_column('job', 'waiting_until')
    op.drop_column('job', 'waiting')
    op.drop_column('job', 'valid_until')
