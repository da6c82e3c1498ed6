-- +goose Up
-- The outbox of the alert outputs (collector/internal/store/outbox.go):
-- every alert event (new, reopened, status) and every audit entry is
-- written here in the transaction that makes the change. xid is the
-- writing transaction's id: senders read rows in (xid, id) order and only
-- those of transactions older than every transaction still running, so a
-- row committed late is never skipped.
CREATE TABLE outbox (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid       BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint,
    uid       TEXT NOT NULL,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    rule_id   TEXT NOT NULL DEFAULT '',
    severity  TEXT NOT NULL DEFAULT '',
    body      TEXT NOT NULL
);
CREATE INDEX outbox_order ON outbox (xid, id);

-- Each output's place in the outbox and its delivery state.
CREATE TABLE output_state (
    name          TEXT PRIMARY KEY,
    cursor_xid    BIGINT NOT NULL,
    cursor_id     BIGINT NOT NULL,
    delivered     BIGINT NOT NULL DEFAULT 0,
    last_success  BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    last_error_at BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX audit_log_at ON audit_log (at, id);

-- +goose Down
DROP INDEX audit_log_at;
DROP TABLE output_state;
DROP TABLE outbox;
