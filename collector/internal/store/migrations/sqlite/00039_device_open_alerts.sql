-- +goose Up
-- open_alerts counts a device's open and acknowledged alerts. Triggers keep
-- it in the transaction that changes an alert, whatever the path (ingest,
-- triage, cases, seeds), so that ingest can tell from the device row it
-- already updates that a report has no alert to auto-resolve, and skip
-- that statement.
ALTER TABLE devices ADD COLUMN open_alerts BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET open_alerts = (SELECT COUNT(*) FROM alerts a
    WHERE a.device_id = devices.id AND a.status IN ('open', 'acknowledged'));

-- +goose StatementBegin
CREATE TRIGGER alerts_open_insert AFTER INSERT ON alerts
WHEN new.status IN ('open', 'acknowledged')
BEGIN
    UPDATE devices SET open_alerts = open_alerts + 1 WHERE id = new.device_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER alerts_open_update AFTER UPDATE OF status, device_id ON alerts
WHEN (old.status IN ('open', 'acknowledged')) <> (new.status IN ('open', 'acknowledged'))
    OR (old.device_id <> new.device_id AND old.status IN ('open', 'acknowledged'))
BEGIN
    UPDATE devices SET open_alerts = open_alerts - 1
        WHERE id = old.device_id AND old.status IN ('open', 'acknowledged');
    UPDATE devices SET open_alerts = open_alerts + 1
        WHERE id = new.device_id AND new.status IN ('open', 'acknowledged');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER alerts_open_delete AFTER DELETE ON alerts
WHEN old.status IN ('open', 'acknowledged')
BEGIN
    UPDATE devices SET open_alerts = open_alerts - 1 WHERE id = old.device_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER alerts_open_delete;
DROP TRIGGER alerts_open_update;
DROP TRIGGER alerts_open_insert;
ALTER TABLE devices DROP COLUMN open_alerts;
