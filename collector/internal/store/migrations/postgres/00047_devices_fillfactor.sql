-- +goose Up
-- The devices table leaves half of each page free for new versions of its
-- rows. A row is wide (about 1.8 kB: its snapshot keys, digests, activity
-- histogram), so a full page held four, and an update that changes no
-- indexed column (the version every member of a cluster takes when the
-- cluster changes, the activity, the keys digest) found no room on the
-- row's page: the new version went to another page, with an entry in each
-- of the table's ten indexes, and BenchmarkIngestCluster's cluster
-- refresh, which bumps each member's version, was the statement with the
-- most server time inside the cluster lock. With the room, such an update
-- stays on the page (HOT) and adds no index entry; pruning the old
-- versions on the page keeps the table no larger than the dead versions
-- made it before. Pages written before this keep their fill until
-- rewritten.
ALTER TABLE devices SET (fillfactor = 50);

-- +goose Down
ALTER TABLE devices RESET (fillfactor);
