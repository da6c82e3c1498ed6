-- +goose Up
-- fact_stamp counts the writes, by any collector replica, that change what
-- a device's row as prejudge reads it (readDevice) takes from other rows
-- than the device's and its snapshot's, which its version does not count:
-- the people a device binds to by serial number or user name, the user
-- names other devices report, the peripherals it shares, its agents, and
-- the revocation of other devices (which frees a user name). A replica
-- keeps a device's row between reports (rowCache) with the stamp it was
-- read under, and keeps a verdict reached on it only while the stamp is
-- still that one (the report's fold statement checks it).
--
-- The stamp is the sum of 16 counters, each statement that changes those
-- facts adding one to the counter of its connection: concurrent writers
-- rarely wait for each other's, and the sum changes with any of them.
-- Ingest never bumps it but where prejudge leaves the report to the writer
-- anyway (user names or peripherals changed): the statement-level
-- triggers bump only for a statement that changed a row which matters (a
-- user name someone has, a shared peripheral), and an enrollment, whose
-- agent and device are new, bumps nothing. clusters are left out: a
-- device in a cluster is never cached, and a device joins one with its
-- version bumped.
CREATE TABLE fact_stamp (
    slot INTEGER PRIMARY KEY,
    n    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO fact_stamp (slot) SELECT generate_series(0, 15);

-- +goose StatementBegin
CREATE FUNCTION fact_stamp_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fact_stamp SET n = n + 1 WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION fact_stamp_bump_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM changed c JOIN people p ON p.username_key = c.username WHERE p.username_key <> '') THEN
        UPDATE fact_stamp SET n = n + 1 WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION fact_stamp_bump_any() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM changed) THEN
        UPDATE fact_stamp SET n = n + 1 WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION fact_stamp_bump_reported() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM changed c JOIN devices d ON d.id = c.device_id WHERE d.version > 0) THEN
        UPDATE fact_stamp SET n = n + 1 WHERE slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER people_fact_stamp AFTER INSERT OR UPDATE OF id, email, username_key, device_serial OR DELETE OR TRUNCATE ON people
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump();
CREATE TRIGGER device_users_fact_stamp_insert AFTER INSERT ON device_users REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump_named();
CREATE TRIGGER device_users_fact_stamp_delete AFTER DELETE ON device_users REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump_named();
CREATE TRIGGER device_users_fact_stamp AFTER UPDATE OR TRUNCATE ON device_users
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump();
CREATE TRIGGER peripheral_shares_fact_stamp_insert AFTER INSERT ON peripheral_shares REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump_any();
CREATE TRIGGER peripheral_shares_fact_stamp_delete AFTER DELETE ON peripheral_shares REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump_any();
CREATE TRIGGER peripheral_shares_fact_stamp AFTER UPDATE OR TRUNCATE ON peripheral_shares
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump();
-- An agent inserted for a device that reported already (its row may be
-- cached); one moved or revoked (a report's UPDATE of its agent sets
-- neither column).
CREATE TRIGGER agents_fact_stamp_insert AFTER INSERT ON agents REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump_reported();
CREATE TRIGGER agents_fact_stamp AFTER UPDATE OF device_id, revoked_at OR DELETE OR TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump();
-- A device revoked or its claim approved (other devices' user names and
-- serial numbers count only while they are active); a report's UPDATE of
-- its device sets none of these columns.
CREATE TRIGGER devices_fact_stamp AFTER UPDATE OF revoked_at, claims_device, serial_number OR DELETE OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION fact_stamp_bump();

-- +goose Down
DROP TRIGGER devices_fact_stamp ON devices;
DROP TRIGGER agents_fact_stamp ON agents;
DROP TRIGGER agents_fact_stamp_insert ON agents;
DROP TRIGGER peripheral_shares_fact_stamp ON peripheral_shares;
DROP TRIGGER peripheral_shares_fact_stamp_delete ON peripheral_shares;
DROP TRIGGER peripheral_shares_fact_stamp_insert ON peripheral_shares;
DROP TRIGGER device_users_fact_stamp ON device_users;
DROP TRIGGER device_users_fact_stamp_delete ON device_users;
DROP TRIGGER device_users_fact_stamp_insert ON device_users;
DROP TRIGGER people_fact_stamp ON people;
DROP FUNCTION fact_stamp_bump_reported();
DROP FUNCTION fact_stamp_bump_any();
DROP FUNCTION fact_stamp_bump_named();
DROP FUNCTION fact_stamp_bump();
DROP TABLE fact_stamp;
