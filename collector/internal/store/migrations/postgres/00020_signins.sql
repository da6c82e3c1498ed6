-- +goose Up
-- Identity-provider sign-ins (collector/internal/idp): one row per provider
-- event, idempotent by (provider, event_id). email is the login (email or
-- UPN) lower-cased; it binds the sign-in to the person with that email.
-- egress is the collector's own GeoIP and network classification of ip
-- (JSON of detect.Egress); provider_* is what the provider said, used only
-- where the collector's databases know nothing. Pruned by --retain-signins.
CREATE TABLE signins (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider           TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    at                 BIGINT NOT NULL,
    email              TEXT NOT NULL,
    result             TEXT NOT NULL,
    reason             TEXT NOT NULL DEFAULT '',
    ip                 TEXT NOT NULL DEFAULT '',
    user_agent         TEXT NOT NULL DEFAULT '',
    device_id          TEXT NOT NULL DEFAULT '',
    mfa_factor         TEXT NOT NULL DEFAULT '',
    mfa_device         TEXT NOT NULL DEFAULT '',
    provider_proxy     INTEGER NOT NULL DEFAULT 0,
    provider_risk      TEXT NOT NULL DEFAULT '',
    provider_country   TEXT NOT NULL DEFAULT '',
    provider_region    TEXT NOT NULL DEFAULT '',
    provider_city      TEXT NOT NULL DEFAULT '',
    provider_latitude  DOUBLE PRECISION NOT NULL DEFAULT 0,
    provider_longitude DOUBLE PRECISION NOT NULL DEFAULT 0,
    egress             TEXT NOT NULL DEFAULT '',
    received_at        BIGINT NOT NULL,
    UNIQUE (provider, event_id)
);
CREATE INDEX signins_email ON signins (email, at);
CREATE INDEX signins_at ON signins (at);
CREATE INDEX signins_mfa_device ON signins (mfa_device) WHERE mfa_device <> '';
CREATE INDEX signins_device ON signins (device_id) WHERE device_id <> '';
-- Each pull connector's state (serve --idp): its cursor, so a restart
-- neither loses nor repeats an event, and what the UI and API show.
CREATE TABLE idp_connectors (
    name            TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    cursor          TEXT NOT NULL DEFAULT '',
    last_event_at   BIGINT NOT NULL DEFAULT 0,
    last_poll_at    BIGINT NOT NULL DEFAULT 0,
    last_success_at BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    last_error_at   BIGINT NOT NULL DEFAULT 0,
    events          BIGINT NOT NULL DEFAULT 0
);
-- Where a laptop was: egress history rows keep the city's coordinates so
-- that sign-ins can be measured against them.
ALTER TABLE egress_history ADD COLUMN has_location INTEGER NOT NULL DEFAULT 0;
ALTER TABLE egress_history ADD COLUMN latitude DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE egress_history ADD COLUMN longitude DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX egress_history_device_at ON egress_history (device_id, at);
-- The linking keys a device gets from its person's sign-in addresses
-- (JSON of fleet.DeviceKey), kept beside its snapshot keys.
ALTER TABLE devices ADD COLUMN signin_keys TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE devices DROP COLUMN signin_keys;
DROP INDEX egress_history_device_at;
ALTER TABLE egress_history DROP COLUMN longitude;
ALTER TABLE egress_history DROP COLUMN latitude;
ALTER TABLE egress_history DROP COLUMN has_location;
DROP TABLE idp_connectors;
DROP TABLE signins;
