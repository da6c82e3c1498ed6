-- +goose Up
-- The alert queue's sort orders (collector/internal/store.ListAlerts): by
-- severity and by last seen, with or without a status filter, each an
-- index walk so that a page costs the same on a million alerts.
CREATE INDEX alerts_status_severity ON alerts (status, severity, id);
CREATE INDEX alerts_severity ON alerts (severity, id);
CREATE INDEX alerts_status_last_seen ON alerts (status, last_seen, id);
CREATE INDEX alerts_last_seen ON alerts (last_seen, id);

-- +goose Down
DROP INDEX alerts_last_seen;
DROP INDEX alerts_status_last_seen;
DROP INDEX alerts_severity;
DROP INDEX alerts_status_severity;
