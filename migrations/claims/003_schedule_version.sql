-- The benefit schedule's version. Every statement that changes plans,
-- plan_benefits or diagnosis_lists gives it a new random token, in the same
-- transaction, so a replica may keep the schedule it read in memory and
-- learn that it is stale from the token alone (one column in the statement
-- that reads a claim's facts): a union's change applies to the next claim
-- decided after it commits, on every replica, with no restart. A random
-- token rather than a counter, so two databases (test copies of one
-- template, a restored dump) never share a token for different rows.
CREATE TABLE claims.schedule_version (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    token uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO claims.schedule_version (id) VALUES (true);

CREATE FUNCTION claims.bump_schedule_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE claims.schedule_version SET token = gen_random_uuid();
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON claims.plans
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_schedule_version();
CREATE TRIGGER plan_benefits_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON claims.plan_benefits
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_schedule_version();
CREATE TRIGGER diagnosis_lists_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON claims.diagnosis_lists
    FOR EACH STATEMENT EXECUTE FUNCTION claims.bump_schedule_version();
