-- +goose Up
-- Hardware identity is a claim: an enrollment claiming the hardware of an
-- active device gets a device of its own, which records the device whose
-- identity it claimed and the hardware key it claimed (its own
-- hardware_key is unique to it until an admin approves the claim).
ALTER TABLE devices ADD COLUMN claims_device TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN claimed_key TEXT NOT NULL DEFAULT '';
-- Mass enrollment: how many devices were enrolled from the same address
-- within the 24 hours before a device (itself included), and with the same
-- secret within the hour before, counted when it enrolls.
ALTER TABLE devices ADD COLUMN enrolled_same_address BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN enrolled_same_secret BIGINT NOT NULL DEFAULT 0;
CREATE INDEX agents_enrolled_ip ON agents (enrolled_ip, enrolled_at);
CREATE INDEX agents_enrolled_secret ON agents (secret_id, enrolled_at);
-- A renewed certificate retires the one before it: the previous serial is
-- accepted only until the new certificate is first used.
ALTER TABLE agents ADD COLUMN prev_cert_serial TEXT NOT NULL DEFAULT '';
-- Enrollment secrets may be limited in uses and time (0: unlimited).
ALTER TABLE enroll_secrets ADD COLUMN max_uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE enroll_secrets ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
-- API tokens may expire (0: never) and record their last use.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN last_used_at;
ALTER TABLE api_tokens DROP COLUMN expires_at;
ALTER TABLE enroll_secrets DROP COLUMN expires_at;
ALTER TABLE enroll_secrets DROP COLUMN max_uses;
ALTER TABLE agents DROP COLUMN prev_cert_serial;
DROP INDEX agents_enrolled_secret;
DROP INDEX agents_enrolled_ip;
ALTER TABLE devices DROP COLUMN enrolled_same_secret;
ALTER TABLE devices DROP COLUMN enrolled_same_address;
ALTER TABLE devices DROP COLUMN claimed_key;
ALTER TABLE devices DROP COLUMN claims_device;
