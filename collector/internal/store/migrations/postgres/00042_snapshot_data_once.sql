-- +goose Up
-- A device's latest snapshot is also its newest snapshot_history entry,
-- which holds the data: snapshots.history_id names that entry, and
-- snapshots.data is left empty, so a changed snapshot's data (a few KB,
-- over a page) is written once per report, not twice. Rows written before
-- keep their data (history_id 0). Retention keeps the entry a device's
-- latest snapshot names.
ALTER TABLE snapshots ADD COLUMN history_id BIGINT NOT NULL DEFAULT 0;

-- +goose Down
UPDATE snapshots SET data = COALESCE((SELECT h.data FROM snapshot_history h WHERE h.id = snapshots.history_id), ''::bytea) WHERE history_id <> 0;
ALTER TABLE snapshots DROP COLUMN history_id;
