-- +goose Up
-- Presence checks (collector/internal/presence, store/presence.go).
-- Times are Unix microseconds (UTC) in BIGINT columns, like everywhere.

-- Enrolment links: one-time, bound to a person and a device; only the
-- SHA-256 of the link's token is kept. roaming = 1 accepts a roaming
-- authenticator (a FIDO2 key) where the laptop has no platform one.
CREATE TABLE presence_enrolments (
    token_hash  TEXT PRIMARY KEY,
    person      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT NOT NULL DEFAULT 0,
    roaming     BIGINT NOT NULL DEFAULT 0
);

-- WebAuthn credentials, each bound to the person and the device it was
-- registered on. credential is the library's credential record (public
-- key, flags, sign count, attestation) as JSON.
CREATE TABLE presence_credentials (
    id           TEXT PRIMARY KEY,
    person       TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    user_handle  TEXT NOT NULL,
    credential   TEXT NOT NULL,
    attestation  TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_used    BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX presence_credentials_person ON presence_credentials (person);

-- Checks: pending (link sent) → verifying (assertion verified, waiting
-- for the agent) → passed or failed (reasons, JSON list). trigger_key
-- names the alert opening that asked for an automatic check ('' when an
-- analyst asked): one check per opening.
CREATE TABLE presence_checks (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    person         TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    reasons        TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    asserted_at    BIGINT NOT NULL DEFAULT 0,
    completed_at   BIGINT NOT NULL DEFAULT 0,
    credential_id  TEXT NOT NULL DEFAULT '',
    browser_ip     TEXT NOT NULL DEFAULT '',
    agent_ip       TEXT NOT NULL DEFAULT '',
    agent_report   TEXT NOT NULL DEFAULT '',
    observation    TEXT NOT NULL DEFAULT '{}',
    trigger_key    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX presence_checks_trigger ON presence_checks (trigger_key) WHERE trigger_key <> '';
CREATE INDEX presence_checks_person ON presence_checks (person, created_at);
CREATE INDEX presence_checks_device ON presence_checks (device_id, state);
CREATE INDEX presence_checks_state ON presence_checks (state, expires_at);

-- Single-use WebAuthn ceremony state: one per enrolment link or check,
-- replaced by a new begin and deleted when a response is verified.
CREATE TABLE presence_challenges (
    subject     TEXT PRIMARY KEY,
    session     TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE presence_challenges;
DROP INDEX presence_checks_trigger;
DROP INDEX presence_checks_state;
DROP INDEX presence_checks_device;
DROP INDEX presence_checks_person;
DROP TABLE presence_checks;
DROP INDEX presence_credentials_person;
DROP TABLE presence_credentials;
DROP TABLE presence_enrolments;
