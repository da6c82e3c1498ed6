-- +goose Up
-- Fleet correlation (collector/internal/fleet). Each device's keys: what it
-- shares with other devices (egress address, gateway MAC, Wi-Fi BSSID, LAN,
-- peripheral serials, remote-tool ids). link is 1 when the key links
-- devices into one cluster (see fleet.Linking), 0 when it is evidence only.
CREATE TABLE device_keys (
    device_id  TEXT NOT NULL REFERENCES devices (id),
    key        TEXT NOT NULL,
    link       INTEGER NOT NULL,
    PRIMARY KEY (device_id, key)
);
CREATE INDEX device_keys_key ON device_keys (key);
-- How many devices hold each linking key: a key held by too many devices
-- (a misconfigured or forged value) links nothing.
CREATE TABLE link_keys (
    key      TEXT PRIMARY KEY,
    holders  BIGINT NOT NULL
);
-- The keys a device's latest snapshot shows (JSON, fleet.Key list), the
-- digest of its current key set, its cluster, its person (the bound email
-- as of its latest report) and its risk score with the contributing alerts.
ALTER TABLE devices ADD COLUMN snapshot_keys TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN keys_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN cluster_id TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN person TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN risk_score BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN risk_contributors TEXT NOT NULL DEFAULT '[]';
CREATE INDEX devices_cluster ON devices (cluster_id);
CREATE INDEX devices_person ON devices (person);
ALTER TABLE people ADD COLUMN risk_score BIGINT NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN risk_contributors TEXT NOT NULL DEFAULT '[]';
-- Clusters of linked devices. status: active, or dissolved when fewer than
-- two devices remain linked; suspected is 1 while a fleet rule has an open
-- alert on a member. summary is the JSON the API shows (members, people,
-- shared evidence, co-signals).
CREATE TABLE clusters (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    devices     BIGINT NOT NULL,
    people      BIGINT NOT NULL,
    score       BIGINT NOT NULL,
    suspected   BIGINT NOT NULL DEFAULT 0,
    summary     TEXT NOT NULL
);
CREATE INDEX clusters_status ON clusters (status, score);
CREATE INDEX clusters_suspected ON clusters (status, suspected, score);
CREATE TABLE cluster_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX cluster_events_cluster ON cluster_events (cluster_id, id);
-- Risk score history of devices and people: a row whenever a score changes.
CREATE TABLE risk_history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    at            BIGINT NOT NULL,
    score         BIGINT NOT NULL,
    contributors  TEXT NOT NULL
);
CREATE INDEX risk_history_subject ON risk_history (subject_type, subject_id, id);
-- The rule's category (its file name under rules/), for co-signals.
ALTER TABLE alerts ADD COLUMN category TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE alerts DROP COLUMN category;
DROP TABLE risk_history;
DROP TABLE cluster_events;
DROP TABLE clusters;
ALTER TABLE people DROP COLUMN risk_contributors;
ALTER TABLE people DROP COLUMN risk_score;
DROP INDEX devices_person;
DROP INDEX devices_cluster;
ALTER TABLE devices DROP COLUMN risk_contributors;
ALTER TABLE devices DROP COLUMN risk_score;
ALTER TABLE devices DROP COLUMN person;
ALTER TABLE devices DROP COLUMN cluster_id;
ALTER TABLE devices DROP COLUMN keys_digest;
ALTER TABLE devices DROP COLUMN snapshot_keys;
DROP TABLE link_keys;
DROP TABLE device_keys;
