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
CREATE FUNCTION alerts_open_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.status IN ('open', 'acknowledged') THEN
            UPDATE devices SET open_alerts = open_alerts - 1 WHERE id = OLD.device_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.status IN ('open', 'acknowledged') THEN
            UPDATE devices SET open_alerts = open_alerts + 1 WHERE id = NEW.device_id;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER alerts_open_insert AFTER INSERT ON alerts FOR EACH ROW
    WHEN (NEW.status IN ('open', 'acknowledged')) EXECUTE FUNCTION alerts_open_count();
CREATE TRIGGER alerts_open_update AFTER UPDATE OF status, device_id ON alerts FOR EACH ROW
    WHEN ((OLD.status IN ('open', 'acknowledged')) <> (NEW.status IN ('open', 'acknowledged'))
        OR (OLD.device_id <> NEW.device_id AND OLD.status IN ('open', 'acknowledged')))
    EXECUTE FUNCTION alerts_open_count();
CREATE TRIGGER alerts_open_delete AFTER DELETE ON alerts FOR EACH ROW
    WHEN (OLD.status IN ('open', 'acknowledged')) EXECUTE FUNCTION alerts_open_count();

-- +goose Down
DROP TRIGGER alerts_open_delete ON alerts;
DROP TRIGGER alerts_open_update ON alerts;
DROP TRIGGER alerts_open_insert ON alerts;
DROP FUNCTION alerts_open_count();
ALTER TABLE devices DROP COLUMN open_alerts;
