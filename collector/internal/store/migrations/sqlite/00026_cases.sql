-- +goose Up
-- Cases (collector/internal/store/cases.go): the alerts of one suspected
-- farm or one person, grouped for a decision. kind is farm (subject: the
-- cluster id), person (subject: the email) or manual (subject ''). At most
-- one active (open or investigating) case per farm or person, so that
-- replicas raising the same farm's alerts at once make one case.
CREATE TABLE cases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open',
    outcome      TEXT NOT NULL DEFAULT '',
    owner        TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    closed_at    BIGINT NOT NULL DEFAULT 0,
    merged_into  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX cases_active_subject ON cases (kind, subject) WHERE status IN ('open', 'investigating') AND kind <> 'manual';
CREATE INDEX cases_status ON cases (status, id);

-- The case an alert belongs to (0: none).
ALTER TABLE alerts ADD COLUMN case_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX alerts_case ON alerts (case_id, id);

CREATE TABLE case_notes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id  BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    author   TEXT NOT NULL,
    text     TEXT NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id, id);

-- The response checklist: one row per ticked step.
CREATE TABLE case_steps (
    case_id  BIGINT NOT NULL,
    step     TEXT NOT NULL,
    done_at  BIGINT NOT NULL,
    done_by  TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, step)
);

-- The collector's Ed25519 key that signs evidence packages, in the
-- database so that every replica signs with the same key.
CREATE TABLE signing_keys (
    name         TEXT PRIMARY KEY,
    private_key  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE case_steps;
DROP TABLE case_notes;
DROP INDEX alerts_case;
ALTER TABLE alerts DROP COLUMN case_id;
DROP INDEX cases_status;
DROP INDEX cases_active_subject;
DROP TABLE cases;
