-- +goose Up
-- The mass-enrollment counts at each enrollment (distinct devices enrolled
-- from the address in the last day, and with the secret in the last hour)
-- read only these indexes: with device_id in them, no agent row is looked
-- up, which in a stampede from one office address (thousands of agents of
-- one address and one secret) was most of each enrollment's time.
CREATE INDEX agents_enrolled_ip_device ON agents (enrolled_ip, enrolled_at, device_id);
CREATE INDEX agents_enrolled_secret_device ON agents (secret_id, enrolled_at, device_id);
DROP INDEX agents_enrolled_ip;
DROP INDEX agents_enrolled_secret;

-- +goose Down
CREATE INDEX agents_enrolled_ip ON agents (enrolled_ip, enrolled_at);
CREATE INDEX agents_enrolled_secret ON agents (secret_id, enrolled_at);
DROP INDEX agents_enrolled_secret_device;
DROP INDEX agents_enrolled_ip_device;
