-- +goose Up
-- Times are Unix microseconds (UTC) in BIGINT columns on both engines.
CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    hardware_key     TEXT NOT NULL UNIQUE,
    hardware_uuid    TEXT NOT NULL DEFAULT '',
    serial_number    TEXT NOT NULL DEFAULT '',
    machine_id       TEXT NOT NULL DEFAULT '',
    hostname         TEXT NOT NULL DEFAULT '',
    os_family        TEXT NOT NULL DEFAULT '',
    os_name          TEXT NOT NULL DEFAULT '',
    os_version       TEXT NOT NULL DEFAULT '',
    hardware_vendor  TEXT NOT NULL DEFAULT '',
    hardware_model   TEXT NOT NULL DEFAULT '',
    agent_id         TEXT NOT NULL DEFAULT '',
    agent_version    TEXT NOT NULL DEFAULT '',
    first_seen       BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL DEFAULT 0,
    last_ip          TEXT NOT NULL DEFAULT '',
    report_interval  BIGINT NOT NULL DEFAULT 0,
    dropped_reports  BIGINT NOT NULL DEFAULT 0,
    clock_skew       BIGINT NOT NULL DEFAULT 0,
    snapshot_digest  TEXT NOT NULL DEFAULT '',
    snapshot_at      BIGINT NOT NULL DEFAULT 0,
    revoked_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_last_seen ON devices (last_seen);
CREATE INDEX devices_hostname ON devices (hostname);

CREATE TABLE enroll_secrets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0,
    uses        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (id),
    secret_id       TEXT NOT NULL DEFAULT '',
    enrolled_at     BIGINT NOT NULL,
    enrolled_ip     TEXT NOT NULL DEFAULT '',
    cert_serial     TEXT NOT NULL DEFAULT '',
    cert_not_after  BIGINT NOT NULL DEFAULT 0,
    last_seen       BIGINT NOT NULL DEFAULT 0,
    revoked_at      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX agents_device ON agents (device_id);

CREATE TABLE reports (
    agent_id     TEXT NOT NULL,
    report_id    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    sequence     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, report_id)
);
CREATE INDEX reports_device ON reports (device_id, received_at);

CREATE TABLE snapshots (
    device_id       TEXT PRIMARY KEY REFERENCES devices (id),
    report_id       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    digest          TEXT NOT NULL,
    section_digests TEXT NOT NULL,
    data            BYTEA NOT NULL
);

CREATE TABLE snapshot_history (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    TEXT NOT NULL,
    report_id    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    digest       TEXT NOT NULL,
    changed      TEXT NOT NULL,
    data         BYTEA NOT NULL
);
CREATE INDEX snapshot_history_device ON snapshot_history (device_id, id);

CREATE TABLE alerts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    title        TEXT NOT NULL,
    severity     TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    tags         TEXT NOT NULL DEFAULT '[]',
    status       TEXT NOT NULL DEFAULT 'open',
    assignee     TEXT NOT NULL DEFAULT '',
    evidence     TEXT NOT NULL DEFAULT '{}',
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    count        BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    UNIQUE (rule_id, device_id)
);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_device ON alerts (device_id, id);

CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE people (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL DEFAULT '',
    username       TEXT NOT NULL DEFAULT '',
    device_serial  TEXT NOT NULL DEFAULT '',
    country        TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    city           TEXT NOT NULL DEFAULT '',
    timezone       TEXT NOT NULL DEFAULT '',
    work_hours     TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE people;
DROP TABLE api_tokens;
DROP TABLE audit_log;
DROP TABLE alerts;
DROP TABLE snapshot_history;
DROP TABLE snapshots;
DROP TABLE reports;
DROP TABLE agents;
DROP TABLE enroll_secrets;
DROP TABLE devices;
