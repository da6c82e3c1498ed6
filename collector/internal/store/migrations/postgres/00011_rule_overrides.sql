-- +goose Up
-- Rules an administrator disabled in the web UI, on top of the policy
-- files: the collector does not evaluate them, and their open alerts stay
-- as they are. Enabling the rule again deletes the row; the audit log
-- keeps the history (target_type 'rule').
CREATE TABLE rule_overrides (
    rule_id      TEXT PRIMARY KEY,
    disabled_by  TEXT NOT NULL,
    disabled_at  BIGINT NOT NULL,
    reason       TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE rule_overrides;
