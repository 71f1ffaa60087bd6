-- Each member's version of the facts a claim decision reads: enrolments,
-- what they have paid, and the claims under their keys. Every statement that
-- changes any of them bumps the version of each member it touches, in the
-- same transaction, whoever runs it (the gateway, an import, a test, psql).
--
-- Why: a claim submission reads its facts while it waits for the insurance
-- system, decides in Python, then writes the claim in one statement that
-- takes the member's lock and proceeds only if the version it read still
-- stands (sources/claims_store.py). Without the version, deciding safely
-- needed BEGIN, the lock, the facts and COMMIT as four more round trips
-- after the insurance call, each waiting its turn on a busy machine.
--
-- A member without a row is at version 0; rows are never deleted, so a
-- version never repeats.
CREATE TABLE claims.member_versions (
    member_id text PRIMARY KEY,
    version   bigint NOT NULL CHECK (version > 0)
);

CREATE FUNCTION claims.bump_member_versions(member_ids text[]) RETURNS void
LANGUAGE sql AS $$
    -- Sorted, so two statements touching the same members lock their rows in one order.
    INSERT INTO claims.member_versions AS v (member_id, version)
    SELECT id, 1 FROM (SELECT DISTINCT unnest(member_ids) AS id) ids WHERE id IS NOT NULL ORDER BY id
    ON CONFLICT (member_id) DO UPDATE SET version = v.version + 1
$$;

-- Enrolments and claims carry member_id; statement-level, with the statement's
-- rows as a transition table, so a bulk write costs one upsert, not one per row.
CREATE FUNCTION claims.bump_member_versions_of_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE claims.member_versions SET version = version + 1;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM claims.bump_member_versions(ARRAY(SELECT member_id FROM old_rows));
    ELSE
        PERFORM claims.bump_member_versions(ARRAY(SELECT member_id FROM new_rows));
    END IF;
    RETURN NULL;
END
$$;

-- Claim lines reach their member through their claim.
CREATE FUNCTION claims.bump_member_versions_of_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM claims.bump_member_versions(ARRAY(
            SELECT c.member_id FROM old_rows l JOIN claims.claims c ON c.id = l.claim_id));
    ELSE
        PERFORM claims.bump_member_versions(ARRAY(
            SELECT c.member_id FROM new_rows l JOIN claims.claims c ON c.id = l.claim_id));
    END IF;
    RETURN NULL;
END
$$;

-- A trigger with a transition table serves one event, hence three of each.
CREATE TRIGGER enrollments_inserted_member_versions AFTER INSERT ON claims.enrollments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER enrollments_updated_member_versions AFTER UPDATE ON claims.enrollments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER enrollments_deleted_member_versions AFTER DELETE ON claims.enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER enrollments_truncated_member_versions AFTER TRUNCATE ON claims.enrollments
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();

CREATE TRIGGER claims_inserted_member_versions AFTER INSERT ON claims.claims
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER claims_updated_member_versions AFTER UPDATE ON claims.claims
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER claims_deleted_member_versions AFTER DELETE ON claims.claims
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
CREATE TRIGGER claims_truncated_member_versions AFTER TRUNCATE ON claims.claims
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();

CREATE TRIGGER claim_lines_inserted_member_versions AFTER INSERT ON claims.claim_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_lines();
CREATE TRIGGER claim_lines_updated_member_versions AFTER UPDATE ON claims.claim_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_lines();
CREATE TRIGGER claim_lines_deleted_member_versions AFTER DELETE ON claims.claim_lines
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_lines();
CREATE TRIGGER claim_lines_truncated_member_versions AFTER TRUNCATE ON claims.claim_lines
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_member_versions_of_rows();
