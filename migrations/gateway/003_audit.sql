-- The audit trail: reads of unmasked PII and medical data, and every mutation.
-- Append-only: a trigger makes UPDATE, DELETE and TRUNCATE fail for every role
-- the gateway connects as, so a compromised key cannot erase its tracks.
CREATE TABLE gateway.audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    key_id          text NOT NULL,
    organization_id text NOT NULL,                    -- the key's organization
    organization_path text NOT NULL,                  -- and its path: an admin key sees its own subtree's events
    operation_name  text,
    kind            text NOT NULL CHECK (kind IN ('PII_READ', 'MEDICAL_READ', 'MUTATION')),
    entity_type     text NOT NULL,
    entity_ids      text[] NOT NULL,                  -- ids only, never the values read
    fields          text[] NOT NULL
);
CREATE INDEX audit_events_at ON gateway.audit_events (at DESC, id DESC);
CREATE INDEX audit_events_key ON gateway.audit_events (key_id, at DESC);

CREATE FUNCTION gateway.audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gateway.audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON gateway.audit_events
    FOR EACH ROW EXECUTE FUNCTION gateway.audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON gateway.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.audit_events_append_only();
