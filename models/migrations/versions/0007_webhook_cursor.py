"""webhook events are never updated: a receiver's cursor and each delivery's range say what was claimed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:30:00

Claiming events by writing `delivery_id` into each row cost PostgreSQL a non-HOT update and an index entry per
event (2,000,000 for a 1,000,000-recipient job). Now a claim reads a receiver's events after its cursor and moves
the cursor; a delivery keeps the range it took.

On PostgreSQL a sequence hands out ids in one order and transactions commit in another, so a cursor on `id` alone
could pass an event still uncommitted. Each event carries its transaction's id (`xid`, a column default), events
are taken in (xid, id) order, and a claim takes only events of transactions older than every one still running
(`pg_snapshot_xmin`): no event can later commit behind the cursor. SQLite has one writer at a time, so ids commit
in order and `xid` stays 0.

Existing rows: events keep xid 0 (they sort before every new one); a receiver's cursor stops before its oldest
unclaimed event; a delivery's range spans its events (a retry may resend a neighbour: receivers deduplicate by id).
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PG_XID = "(pg_current_xact_id()::text::bigint)"
POSITIONS = {"webhook_receiver": ("cursor_xid", "cursor_id"),
             "webhook_delivery": ("after_xid", "after_id", "last_xid", "last_id")}


def _position(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text('0'))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.add_column('webhook_event', _position('xid'))  # existing rows: 0
    if not sqlite:
        op.execute(f"ALTER TABLE webhook_event ALTER COLUMN xid SET DEFAULT {PG_XID}")
    for table, columns in POSITIONS.items():
        for column in columns:
            op.add_column(table, _position(column))
    of_delivery = "FROM webhook_event e WHERE e.delivery_id = webhook_delivery.id"
    op.execute(f"UPDATE webhook_delivery SET after_id = coalesce((SELECT min(e.id) - 1 {of_delivery}), 0), "
               f"last_id = coalesce((SELECT max(e.id) {of_delivery}), 0)")
    of_receiver = "FROM webhook_event e WHERE e.receiver_id = webhook_receiver.id"
    op.execute(f"UPDATE webhook_receiver SET cursor_id = coalesce("
               f"(SELECT min(e.id) - 1 {of_receiver} AND e.delivery_id IS NULL), (SELECT max(e.id) {of_receiver}), 0)")
    op.drop_index('ix_webhook_event_unclaimed', table_name='webhook_event')
    op.drop_index('ix_webhook_event_delivery', table_name='webhook_event')
    op.execute("ALTER TABLE webhook_event DROP COLUMN delivery_id")  # plain DROP COLUMN (SQLite ≥ 3.35)
    op.create_index('ix_webhook_event_receiver_order', 'webhook_event', ['receiver_id', 'xid', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_event_receiver_order', table_name='webhook_event')
    op.add_column('webhook_event', sa.Column('delivery_id', sa.Integer(), nullable=True))
    op.execute("UPDATE webhook_event SET delivery_id = (SELECT max(d.id) FROM webhook_delivery d "
               "WHERE d.receiver_id = webhook_event.receiver_id "
               "AND (webhook_event.xid, webhook_event.id) > (d.after_xid, d.after_id) "
               "AND (webhook_event.xid, webhook_event.id) <= (d.last_xid, d.last_id))")
    op.create_index('ix_webhook_event_unclaimed', 'webhook_event', ['receiver_id', 'id'], unique=False,
                    postgresql_where=sa.text('delivery_id IS NULL'), sqlite_where=sa.text('delivery_id IS NULL'))
    op.create_index('ix_webhook_event_delivery', 'webhook_event', ['delivery_id'], unique=False,
                    postgresql_where=sa.text('delivery_id IS NOT NULL'),
                    sqlite_where=sa.text('delivery_id IS NOT NULL'))
    for table, columns in POSITIONS.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute("ALTER TABLE webhook_event DROP COLUMN xid")
