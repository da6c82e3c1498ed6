-- +goose Up
-- ingest_fold_check lets a group of reports be stored in one round trip:
-- their fold statements sent together and committed at once (see the
-- writer's storeInOneTrip). Each fold statement ends by calling it, and it
-- raises SQLSTATE BF001, which rolls the whole round trip back, when the
-- report it stored would need the writer to run another statement: missed,
-- worked out by the statement from its own rows (the device changed since
-- the verdict was reached, the quota refused the report, the egress
-- changed), or the device has open or acknowledged alerts (opened, as the
-- fold's UPDATE of the device row counted them) of rules the verdict
-- cleared, which the writer resolves. The writer then stores the group the
-- usual way, one statement after another. VOLATILE: its query takes a
-- snapshot of its own, after the fold's UPDATE locked the device row, so
-- it sees every alert change committed before that lock (each takes the
-- row's lock too, through the open_alerts triggers of migration 00039).
-- +goose StatementBegin
CREATE FUNCTION ingest_fold_check(missed BOOLEAN, device TEXT, opened BIGINT, cleared TEXT[]) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT missed AND opened > 0 AND cardinality(cleared) > 0 THEN
        missed := EXISTS (SELECT FROM alerts a WHERE a.device_id = device
            AND a.status IN ('open', 'acknowledged') AND a.rule_id = ANY (cleared));
    END IF;
    IF missed THEN
        RAISE EXCEPTION 'report of device % needs more than its fold statement', device USING ERRCODE = 'BF001';
    END IF;
    RETURN 0;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ingest_fold_check(BOOLEAN, TEXT, BIGINT, TEXT[]);
