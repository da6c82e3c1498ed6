-- +goose Up
-- Nothing: the narrow table of last_seen is PostgreSQL's (see its
-- migration 00048); SQLite keeps devices_last_seen_id.

-- +goose Down
