-- +goose Up
-- The outbox of the alert outputs (collector/internal/store/outbox.go):
-- every alert event (new, reopened, status) and every audit entry is
-- written here in the transaction that makes the change. SQLite has one
-- writer, so rows commit in id order and xid (PostgreSQL's transaction
-- id) stays 0.
CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    xid       BIGINT NOT NULL DEFAULT 0,
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
