-- +goose Up
-- What each agent stored per UTC day, against its quota (serve
-- --agent-reports-per-day, --agent-bytes-per-day): reports and bytes
-- counted as they are stored, and whether agent_report_flood was raised.
CREATE TABLE agent_usage (
    agent_id  TEXT NOT NULL,
    day       BIGINT NOT NULL,
    reports   BIGINT NOT NULL DEFAULT 0,
    bytes     BIGINT NOT NULL DEFAULT 0,
    flagged   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, day)
);

-- +goose Down
DROP TABLE agent_usage;
