"""job_progress: a running job's counts at each sweep (when they changed), for the console's chart

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:10:00

`job_progress`: one row per job and sweep in which its counters moved: `at` and `counts` (JSON, messages per
status). A few dozen rows for a million-recipient job; read by the console, never on the send or report path.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_progress_job', 'job_progress', ['job_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_job_progress_job', table_name='job_progress')
    op.drop_table('job_progress')
