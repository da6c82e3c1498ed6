-- +goose Up
-- Nothing: PostgreSQL's fact_stamp counts other replicas' writes; SQLite
-- has one collector, whose writer sees another process's writes in the
-- database's data_version (rowCache).

-- +goose Down
