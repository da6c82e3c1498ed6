-- +goose Up
-- Nothing: the fill factor is PostgreSQL's (see its migration 00047).

-- +goose Down
