"""per-job message counters by status, kept by triggers on message

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

`job_count` holds, per job and status, how many messages are in it; a job's count is `sum(n)` over its rows.
Triggers on `message` keep it in the same transaction as every change (INSERT, COPY, UPDATE, DELETE, by any
code or by hand), so no code path can forget a counter and a rollback takes the counts back with the change.

- PostgreSQL: statement-level triggers with transition tables APPEND one delta row per job and status a
  statement changed: concurrent workers never wait on one hot counter row. `models.counts.compact` folds the
  deltas. (PostgreSQL allows a transition table only on a trigger of one event and no column list: three.)
- SQLite has row triggers only, and one writer: they upsert one row per job and status (unique index there).
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE FUNCTION job_count_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- each branch names only the transition tables its event has
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_count (job_id, status, n)
        SELECT job_id, status, count(*) FROM new_rows GROUP BY job_id, status;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO job_count (job_id, status, n)
        SELECT job_id, status, sum(d) FROM (
            SELECT job_id, status, 1 AS d FROM new_rows
            UNION ALL SELECT job_id, status, -1 FROM old_rows
        ) x GROUP BY job_id, status HAVING sum(d) <> 0;
    ELSE
        INSERT INTO job_count (job_id, status, n)
        SELECT job_id, status, -count(*) FROM old_rows GROUP BY job_id, status;
    END IF;
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = {
    "job_count_insert": "AFTER INSERT ON message REFERENCING NEW TABLE AS new_rows",
    "job_count_update": "AFTER UPDATE ON message REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "job_count_delete": "AFTER DELETE ON message REFERENCING OLD TABLE AS old_rows",
}

_UPSERT = ("INSERT INTO job_count (job_id, status, n) VALUES ({job}, {status}, {d}) "
           "ON CONFLICT (job_id, status) DO UPDATE SET n = n + excluded.n;")
SQLITE_TRIGGERS = {
    "job_count_insert": "AFTER INSERT ON message BEGIN "
                        + _UPSERT.format(job="NEW.job_id", status="NEW.status", d=1) + " END",
    "job_count_update": "AFTER UPDATE OF job_id, status ON message "
                        "WHEN OLD.status IS NOT NEW.status OR OLD.job_id IS NOT NEW.job_id BEGIN "
                        + _UPSERT.format(job="OLD.job_id", status="OLD.status", d=-1) + " "
                        + _UPSERT.format(job="NEW.job_id", status="NEW.status", d=1) + " END",
    "job_count_delete": "AFTER DELETE ON message BEGIN "
                        + _UPSERT.format(job="OLD.job_id", status="OLD.status", d=-1) + " END",
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if not sqlite:  # no message may change between the backfill below and the triggers' creation
        op.execute("LOCK TABLE message IN SHARE ROW EXCLUSIVE MODE")
    op.create_table('job_count',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    # SQLite only: the upsert's conflict target (an index sqlite_autoindex_job_count_1; unnamed, so it stays
    # out of the models' schema). PostgreSQL appends deltas: no unique constraint there.
    *([sa.UniqueConstraint('job_id', 'status')] if sqlite else []),
    )
    with op.batch_alter_table('job_count', schema=None) as batch_op:
        batch_op.create_index('ix_job_count_job', ['job_id'], unique=False)
    # the counts of messages already there; the triggers count what comes next (one transaction holds both:
    # on SQLite this INSERT takes the one write lock, on PostgreSQL the LOCK above keeps writers out)
    op.execute("INSERT INTO job_count (job_id, status, n) SELECT job_id, status, count(*) FROM message "
               "GROUP BY job_id, status")
    if sqlite:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        op.execute(PG_FUNCTION)
        for name, timing in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {timing} FOR EACH STATEMENT EXECUTE FUNCTION job_count_delta()")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for name in reversed(SQLITE_TRIGGERS if sqlite else PG_TRIGGERS):
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if sqlite else " ON message"))
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS job_count_delta()")
    op.drop_table('job_count')
