"""message rows updated in place: expiry by chunk instead of two status indexes, room on each page

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:30:00

A report changes a message's status, state, description and times. With an index on `status` every such
UPDATE wrote a new entry into five indexes; without one (and with free room on the page: `fillfactor = 50` on
PostgreSQL, as a batch updates every row of its pages in one transaction) it is a HOT update that touches no
index. The two status indexes served the sweeper's expiry scan (now by chunk: `chunk.closed_at`, see
`msgrelay.sweep`) and a job's message list by status (served by `ix_message_job_seq`: the job's messages in
order, filtered). Raw reports keep an index entry only while unmatched, and none by custom id (nothing read it).
`fillfactor` applies to pages written from now on; an existing table keeps its full pages until it is rewritten
(`VACUUM FULL message`, or `pg_repack`).
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN_CHUNK = "closed_at IS NULL"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('chunk', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index('ix_chunk_open_status_updated', 'chunk', ['status', 'updated_at'], unique=False,
                    postgresql_where=sa.text(OPEN_CHUNK), sqlite_where=sa.text(OPEN_CHUNK))
    op.drop_index('ix_message_status_submitted', table_name='message')
    # raw reports: an entry only for those still to match (partial), none by custom id (nothing reads it)
    op.drop_index('ix_rawreport_custom_id', table_name='rawreport')
    op.drop_index('ix_rawreport_unmatched', table_name='rawreport')
    op.create_index('ix_rawreport_unmatched', 'rawreport', ['received_at'], unique=False,
                    postgresql_where=sa.text("matched = false"), sqlite_where=sa.text("matched = 0"))
    op.drop_index('ix_message_job_status', table_name='message')
    if not sqlite:
        op.execute("ALTER TABLE message SET (fillfactor = 50)")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if not sqlite:
        op.execute("ALTER TABLE message RESET (fillfactor)")
    op.create_index('ix_message_job_status', 'message', ['job_id', 'status'], unique=False)
    op.create_index('ix_message_status_submitted', 'message', ['status', 'submitted_at'], unique=False)
    op.drop_index('ix_rawreport_unmatched', table_name='rawreport')
    op.create_index('ix_rawreport_unmatched', 'rawreport', ['matched', 'received_at'], unique=False)
    op.create_index('ix_rawreport_custom_id', 'rawreport', ['custom_id'], unique=False)
    op.drop_index('ix_chunk_open_status_updated', table_name='chunk')
    with op.batch_alter_table('chunk', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
