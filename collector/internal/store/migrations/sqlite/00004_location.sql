-- +goose Up
-- Where each device's reports come from: the egress address's GeoIP and
-- network answer (JSON), since when it has been the current one, and the
-- previous egress with the last time it was seen, for travel rules.
ALTER TABLE devices ADD COLUMN egress TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN egress_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN prev_egress TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN prev_egress_at BIGINT NOT NULL DEFAULT 0;
-- User names seen on each device (lower case, also without domain), from
-- its latest snapshot; people bind to devices by them.
CREATE TABLE device_users (
    device_id  TEXT NOT NULL REFERENCES devices (id),
    username   TEXT NOT NULL,
    PRIMARY KEY (device_id, username)
);
CREATE INDEX device_users_username ON device_users (username);
-- A person's user name as devices report it (lower case, no domain), and
-- the declared city located in the gazetteer (location: "" until located,
-- "ok", or why not).
ALTER TABLE people ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
ALTER TABLE people ADD COLUMN latitude DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN longitude DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN location TEXT NOT NULL DEFAULT '';
UPDATE people SET username_key = lower(username);
CREATE INDEX people_username_key ON people (username_key);

-- +goose Down
DROP INDEX people_username_key;
ALTER TABLE people DROP COLUMN location;
ALTER TABLE people DROP COLUMN longitude;
ALTER TABLE people DROP COLUMN latitude;
ALTER TABLE people DROP COLUMN username_key;
DROP TABLE device_users;
ALTER TABLE devices DROP COLUMN prev_egress_at;
ALTER TABLE devices DROP COLUMN prev_egress;
ALTER TABLE devices DROP COLUMN egress_since;
ALTER TABLE devices DROP COLUMN egress;
