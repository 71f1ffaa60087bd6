-- How many members each organization files directly, kept by the triggers below.
-- A district's staff list shows its totalCount: at 1 000 000 members that was a
-- count of ~140 000 rows on every request; summing the counters of the
-- district's organizations (a few hundred rows) costs the same at any size.
-- Statement-level triggers with transition tables: an import of 100 000
-- members updates each counter once per statement, not once per row. Two
-- writers into one organization wait on its counter row until the first commits.
CREATE TABLE members.organization_member_counts (
    organization_id text PRIMARY KEY REFERENCES members.organizations (id) ON DELETE CASCADE,
    members         bigint NOT NULL
);

CREATE FUNCTION members.count_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM members.organization_member_counts;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO members.organization_member_counts AS c (organization_id, members)
        SELECT organization_id, count(*) FROM new_rows GROUP BY organization_id
        ON CONFLICT (organization_id) DO UPDATE SET members = c.members + EXCLUDED.members;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE members.organization_member_counts c SET members = c.members - d.n
        FROM (SELECT organization_id, count(*) AS n FROM old_rows GROUP BY organization_id) d
        WHERE c.organization_id = d.organization_id;
    ELSE  -- UPDATE: only a changed organization_id moves a count
        INSERT INTO members.organization_member_counts AS c (organization_id, members)
        SELECT organization_id, sum(delta) FROM (
            SELECT organization_id, 1 AS delta FROM new_rows
            UNION ALL
            SELECT organization_id, -1 FROM old_rows) moved
        GROUP BY organization_id HAVING sum(delta) <> 0
        ON CONFLICT (organization_id) DO UPDATE SET members = c.members + EXCLUDED.members;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER members_counted_on_insert AFTER INSERT ON members.members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION members.count_members();
CREATE TRIGGER members_counted_on_update AFTER UPDATE ON members.members
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION members.count_members();
CREATE TRIGGER members_counted_on_delete AFTER DELETE ON members.members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION members.count_members();
CREATE TRIGGER members_counted_on_truncate AFTER TRUNCATE ON members.members
    FOR EACH STATEMENT EXECUTE FUNCTION members.count_members();

-- Counters for the members already there; writers wait until they are in.
LOCK TABLE members.members IN SHARE MODE;
INSERT INTO members.organization_member_counts (organization_id, members)
SELECT organization_id, count(*) FROM members.members GROUP BY organization_id;
