-- +goose Up
-- The first-run admin token (written to first-run-credentials.txt) is
-- revoked once an enabled admin user exists: first_run marks it. Tokens
-- created before this migration are known by the name the collector gave
-- it.
ALTER TABLE api_tokens ADD COLUMN first_run INTEGER NOT NULL DEFAULT 0;
UPDATE api_tokens SET first_run = 1 WHERE name = 'first-run admin' AND role = 'admin';

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN first_run;
