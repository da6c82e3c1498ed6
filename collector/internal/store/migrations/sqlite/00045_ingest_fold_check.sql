-- +goose Up
-- PostgreSQL's ingest_fold_check (one round trip a group of reports):
-- SQLite's single writer runs its statements in process, nothing to save.

-- +goose Down
