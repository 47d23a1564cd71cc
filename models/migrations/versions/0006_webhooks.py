"""producer status webhooks: receivers, an event outbox kept by triggers, deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:00:00

Events are written by triggers on `message` and `job` in the transaction of the change, for every code path
(send results, reports, pushes, the sweeper, cancel, inserts that start final) and a rollback takes its events
back. Only a status that actually changes produces one: a message into submitted, delivered, failed, expired,
rejected or unknown; a job into paused, done or cancelled, or out of paused (resumed). Only jobs with a
receiver (`job.webhook_receiver_id`, resolved at submit) produce events: the trigger filters with a join.

- PostgreSQL: statement-level triggers with transition tables, one INSERT … SELECT per statement (a COPY of
  1,000,000 queued messages or a set-based UPDATE of 5,000 reports costs one pass over the changed rows).
- SQLite: row triggers with a WHEN clause (nothing runs for an unchanged status).
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MESSAGE_EVENT_STATUSES = "('submitted', 'delivered', 'failed', 'expired', 'rejected', 'unknown')"
_EVENT_COLUMNS = "receiver_id, job_id, message_id, type, status, provider_state, provider_desc, created_at"

PG_MESSAGE_FUNCTION = f"""
CREATE FUNCTION webhook_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO webhook_event ({_EVENT_COLUMNS})
        SELECT j.webhook_receiver_id, n.job_id, n.id, 'message.' || n.status, n.status, n.provider_state,
               n.provider_desc, now()
        FROM new_rows n JOIN job j ON j.id = n.job_id
        WHERE n.status IN {MESSAGE_EVENT_STATUSES} AND j.webhook_receiver_id IS NOT NULL
        ORDER BY n.id;
    ELSE
        INSERT INTO webhook_event ({_EVENT_COLUMNS})
        SELECT j.webhook_receiver_id, n.job_id, n.id, 'message.' || n.status, n.status, n.provider_state,
               n.provider_desc, now()
        FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN job j ON j.id = n.job_id
        WHERE n.status IN {MESSAGE_EVENT_STATUSES} AND n.status IS DISTINCT FROM o.status
          AND j.webhook_receiver_id IS NOT NULL
        ORDER BY n.id;
    END IF;
    RETURN NULL;
END
$$
"""
#: a job's counts by status at the moment of the change (every status appears at delivery, zero when absent)
_PG_COUNTS = ("(SELECT json_object_agg(c.status, c.n) FROM (SELECT status, sum(n) AS n FROM job_count "
              "WHERE job_id = {job} GROUP BY status HAVING sum(n) <> 0) c)")
_JOB_EVENT_TYPE = ("CASE WHEN {new}.status IN ('paused', 'done', 'cancelled') THEN 'job.' || {new}.status "
                   "ELSE 'job.resumed' END")
_JOB_EVENT_WHEN = ("{new}.status IS DISTINCT FROM {old}.status AND ({new}.status IN ('paused', 'done', 'cancelled') "
                   "OR ({old}.status = 'paused' AND {new}.status IN ('running', 'queued')))")
PG_JOB_FUNCTION = f"""
CREATE FUNCTION webhook_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_event (receiver_id, job_id, type, status, reason, counts, created_at)
    SELECT n.webhook_receiver_id, n.id, {_JOB_EVENT_TYPE.format(new='n')}, n.status, n.reason,
           {_PG_COUNTS.format(job='n.id')}, now()
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.webhook_receiver_id IS NOT NULL AND {_JOB_EVENT_WHEN.format(new='n', old='o')}
    ORDER BY n.id;
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = {
    "webhook_message_insert": ("message", "AFTER INSERT ON message REFERENCING NEW TABLE AS new_rows",
                               "webhook_message_events"),
    "webhook_message_update": ("message", "AFTER UPDATE ON message REFERENCING OLD TABLE AS old_rows "
                                          "NEW TABLE AS new_rows", "webhook_message_events"),
    "webhook_job_update": ("job", "AFTER UPDATE ON job REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
                           "webhook_job_events"),
}

# SQLite keeps datetimes as text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): %f gives milliseconds, padded to micro
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
_SQLITE_MESSAGE_EVENT = (f"INSERT INTO webhook_event ({_EVENT_COLUMNS}) "
                         f"SELECT j.webhook_receiver_id, NEW.job_id, NEW.id, 'message.' || NEW.status, NEW.status, "
                         f"NEW.provider_state, NEW.provider_desc, {_SQLITE_NOW} FROM job j "
                         f"WHERE j.id = NEW.job_id AND j.webhook_receiver_id IS NOT NULL;")
_SQLITE_COUNTS = ("(SELECT json_group_object(c.status, c.n) FROM (SELECT status, sum(n) AS n FROM job_count "
                  "WHERE job_id = NEW.id GROUP BY status HAVING sum(n) <> 0) c)")
SQLITE_TRIGGERS = {
    "webhook_message_insert": f"AFTER INSERT ON message WHEN NEW.status IN {MESSAGE_EVENT_STATUSES} "
                              f"BEGIN {_SQLITE_MESSAGE_EVENT} END",
    "webhook_message_update": f"AFTER UPDATE OF status ON message WHEN NEW.status IN {MESSAGE_EVENT_STATUSES} "
                              f"AND OLD.status IS NOT NEW.status BEGIN {_SQLITE_MESSAGE_EVENT} END",
    "webhook_job_update": (f"AFTER UPDATE OF status ON job WHEN NEW.webhook_receiver_id IS NOT NULL AND "
                           f"{_JOB_EVENT_WHEN.format(new='NEW', old='OLD').replace('IS DISTINCT FROM', 'IS NOT')} "
                           f"BEGIN INSERT INTO webhook_event (receiver_id, job_id, type, status, reason, counts, "
                           f"created_at) SELECT NEW.webhook_receiver_id, NEW.id, "
                           f"{_JOB_EVENT_TYPE.format(new='NEW')}, NEW.status, NEW.reason, "
                           f"{_SQLITE_COUNTS}, {_SQLITE_NOW}; END"),
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    event_id = sa.Integer() if sqlite else sa.BigInteger()
    op.create_table('webhook_receiver',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('url'),
    )
    op.create_table('webhook_event',
    sa.Column('id', event_id, autoincrement=True, nullable=False),
    sa.Column('receiver_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('provider_state', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('provider_desc', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_event_unclaimed', ['receiver_id', 'id'], unique=False,
                              postgresql_where=sa.text('delivery_id IS NULL'),
                              sqlite_where=sa.text('delivery_id IS NULL'))
        batch_op.create_index('ix_webhook_event_delivery', ['delivery_id'], unique=False,
                              postgresql_where=sa.text('delivery_id IS NOT NULL'),
                              sqlite_where=sa.text('delivery_id IS NOT NULL'))
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('receiver_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('first_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_receiver_status', ['receiver_id', 'status'], unique=False)
        batch_op.create_index('ix_webhook_delivery_status_due', ['status', 'next_attempt_at'], unique=False)
    # a plain ADD COLUMN on both (batch mode would rebuild `job` on SQLite only for what it cannot alter)
    op.add_column('job', sa.Column('webhook_receiver_id', sa.Integer(), nullable=True))
    if sqlite:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        op.execute(PG_MESSAGE_FUNCTION)
        op.execute(PG_JOB_FUNCTION)
        for name, (_table, timing, function) in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {timing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        for name in reversed(SQLITE_TRIGGERS):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for name, (table, _timing, _function) in reversed(PG_TRIGGERS.items()):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS webhook_job_events()")
        op.execute("DROP FUNCTION IF EXISTS webhook_message_events()")
    # a plain DROP COLUMN (SQLite ≥ 3.35): batch mode would rebuild `job`, which chunks and messages reference
    op.execute("ALTER TABLE job DROP COLUMN webhook_receiver_id")
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_event')
    op.drop_table('webhook_receiver')
