-- +goose Up
-- facts is a digest of what the members' rules see of their cluster
-- (clusterFacts): a refresh that leaves it unchanged does not touch the
-- members' rows (see refreshCluster).
ALTER TABLE clusters ADD COLUMN facts TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clusters DROP COLUMN facts;
