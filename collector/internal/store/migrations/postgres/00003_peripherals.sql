-- +goose Up
-- Serials of the peripherals (USB HID devices, external displays) in each
-- device's latest snapshot, for the fleet-wide "same peripheral on several
-- laptops" rule. Replaced whenever a device's snapshot changes.
CREATE TABLE peripheral_serials (
    device_id  TEXT NOT NULL REFERENCES devices (id),
    key        TEXT NOT NULL,
    location   TEXT NOT NULL,
    PRIMARY KEY (device_id, key)
);
CREATE INDEX peripheral_serials_key ON peripheral_serials (key);
-- Which other devices have each of a device's peripheral serials, kept up
-- to date when serials change, so that reading a device's facts is a
-- lookup rather than a join over the fleet.
CREATE TABLE peripheral_shares (
    device_id  TEXT NOT NULL REFERENCES devices (id),
    key        TEXT NOT NULL,
    other_id   TEXT NOT NULL REFERENCES devices (id),
    PRIMARY KEY (device_id, key, other_id)
);
CREATE INDEX peripheral_shares_other ON peripheral_shares (other_id);
-- When a snapshot last showed the built-in panel in use (0: never).
ALTER TABLE devices ADD COLUMN internal_display_active_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE devices DROP COLUMN internal_display_active_at;
DROP TABLE peripheral_shares;
DROP TABLE peripheral_serials;
