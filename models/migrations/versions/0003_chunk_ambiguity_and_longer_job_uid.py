"""chunk ambiguity and request-id age; longer job uid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 01:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chunk') as batch:
        batch.add_column(sa.Column('request_id_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('ambiguous_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('job') as batch:
        batch.alter_column('uid', existing_type=sqlmodel.sql.sqltypes.AutoString(length=12),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=24), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('job') as batch:
        batch.alter_column('uid', existing_type=sqlmodel.sql.sqltypes.AutoString(length=24),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=12), existing_nullable=False)
    with op.batch_alter_table('chunk') as batch:
        batch.drop_column('ambiguous_at')
        batch.drop_column('request_id_at')
