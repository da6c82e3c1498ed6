-- +goose Up
-- An agent's count of the day against its quota moves onto its row
-- (usage_day: the UTC day counted, in the micros of its midnight). With
-- a quota set (serve's default), every report upserted its agent's row of
-- the day in agent_usage, a b-tree page of its own per report in the
-- commit's WAL frames, while the report rewrites the agent's row anyway
-- (its last_seen): there the count costs no page more. Only the current
-- day was ever read; the past days' rows, never pruned, are dropped.
ALTER TABLE agents ADD COLUMN usage_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN usage_reports BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN usage_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN usage_flagged BIGINT NOT NULL DEFAULT 0;
UPDATE agents SET (usage_day, usage_reports, usage_bytes, usage_flagged) =
    (SELECT u.day, u.reports, u.bytes, u.flagged FROM agent_usage u WHERE u.agent_id = agents.id ORDER BY u.day DESC LIMIT 1)
    WHERE id IN (SELECT agent_id FROM agent_usage);
DROP TABLE agent_usage;

-- +goose Down
-- The agents' last counted days come back; earlier days were dropped.
CREATE TABLE agent_usage (
    agent_id  TEXT NOT NULL,
    day       BIGINT NOT NULL,
    reports   BIGINT NOT NULL DEFAULT 0,
    bytes     BIGINT NOT NULL DEFAULT 0,
    flagged   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
);
INSERT INTO agent_usage (agent_id, day, reports, bytes, flagged)
    SELECT id, usage_day, usage_reports, usage_bytes, usage_flagged FROM agents WHERE usage_day <> 0;
ALTER TABLE agents DROP COLUMN usage_flagged;
ALTER TABLE agents DROP COLUMN usage_bytes;
ALTER TABLE agents DROP COLUMN usage_reports;
ALTER TABLE agents DROP COLUMN usage_day;
