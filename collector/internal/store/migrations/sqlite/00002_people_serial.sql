-- +goose Up
-- People are bound to devices by the device's hardware serial.
CREATE INDEX people_device_serial ON people (lower(device_serial));

-- +goose Down
DROP INDEX people_device_serial;
