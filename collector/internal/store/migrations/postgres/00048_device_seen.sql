-- +goose Up
-- Every report sets its device's last_seen. With an index on it
-- (devices_last_seen_id, which the device list sorted by last report
-- needs), no such UPDATE could stay on its page (HOT): each wrote a new
-- version of the wide row with an entry in each of the table's ten
-- indexes. last_seen's index now lives on a narrow table of its own,
-- device_seen, which a trigger keeps equal to devices.last_seen on every
-- write, whichever statement makes it; a report's UPDATE of its device
-- then changes no indexed column and stays on the page (the table leaves
-- half of each page free, 00047), and the narrow row takes the two index
-- entries instead of ten. SQLite updates in place and only the indexes
-- whose columns changed, so its schema keeps the index on devices.
--
-- Other replicas may write devices meanwhile: the lock holds their writes
-- back from the copy below until the triggers are in place.
LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE device_seen (
    device_id TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    last_seen BIGINT NOT NULL
);
INSERT INTO device_seen (device_id, last_seen) SELECT id, last_seen FROM devices;
CREATE INDEX device_seen_last ON device_seen (last_seen, device_id);

-- +goose StatementBegin
CREATE FUNCTION device_seen_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO device_seen (device_id, last_seen) VALUES (NEW.id, NEW.last_seen);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION device_seen_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_seen SET last_seen = NEW.last_seen WHERE device_id = NEW.id;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER devices_seen_insert AFTER INSERT ON devices
    FOR EACH ROW EXECUTE FUNCTION device_seen_insert();
CREATE TRIGGER devices_seen_update AFTER UPDATE OF last_seen ON devices
    FOR EACH ROW WHEN (OLD.last_seen IS DISTINCT FROM NEW.last_seen) EXECUTE FUNCTION device_seen_update();
DROP INDEX devices_last_seen_id;

-- +goose Down
CREATE INDEX devices_last_seen_id ON devices (last_seen, id);
DROP TRIGGER devices_seen_update ON devices;
DROP TRIGGER devices_seen_insert ON devices;
DROP FUNCTION device_seen_update();
DROP FUNCTION device_seen_insert();
DROP TABLE device_seen;
