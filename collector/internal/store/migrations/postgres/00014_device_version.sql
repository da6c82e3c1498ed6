-- +goose Up
-- A device's version counts the writes that change what its facts are
-- built from (its reports, its cluster and the cluster's view, its person
-- binding). A report's rules are evaluated outside the single writer on the
-- device as read; the writer stores that verdict only when the version is
-- still the one read (collector/internal/store.prejudge).
ALTER TABLE devices ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE devices DROP COLUMN version;
