-- +goose Up
-- Each device's egress addresses over time: a row whenever a report comes
-- from an address other than the device's last one (the first report
-- included), with what GeoIP and the network catalog said of it then. The
-- device page shows the newest; at most 500 rows per device are kept.
CREATE TABLE egress_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id      TEXT NOT NULL REFERENCES devices (id),
    at             BIGINT NOT NULL,
    ip             TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT '',
    country        TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    city           TEXT NOT NULL DEFAULT '',
    asn            BIGINT NOT NULL DEFAULT 0,
    org            TEXT NOT NULL DEFAULT '',
    network_class  TEXT NOT NULL DEFAULT '',
    network_name   TEXT NOT NULL DEFAULT '',
    timezone       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX egress_history_device ON egress_history (device_id, id);
-- The UI's device and people lists: sorted by risk or last report a page
-- at a time, searched by a prefix of the host name, serial or email
-- (case-insensitive; devices_person and the unique email index serve the
-- email prefixes).
CREATE INDEX devices_risk ON devices (risk_score, id);
CREATE INDEX devices_last_seen_id ON devices (last_seen, id);
CREATE INDEX devices_hostname_lower ON devices (lower(hostname));
CREATE INDEX devices_serial_lower ON devices (lower(serial_number));
CREATE INDEX people_risk ON people (risk_score DESC, email);
CREATE INDEX people_name_lower ON people (lower(name));

-- +goose Down
DROP INDEX people_name_lower;
DROP INDEX people_risk;
DROP INDEX devices_serial_lower;
DROP INDEX devices_hostname_lower;
DROP INDEX devices_last_seen_id;
DROP INDEX devices_risk;
DROP TABLE egress_history;
