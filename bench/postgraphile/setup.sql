-- PostGraphile's view of "members under a district": the same subtree
-- filter the gateway applies, as a function it can expose.
CREATE SCHEMA IF NOT EXISTS bench_pg;
CREATE OR REPLACE FUNCTION bench_pg.members_under(district text) RETURNS SETOF members.members
STABLE LANGUAGE sql AS $$
    SELECT m.* FROM members.members m
    WHERE m.organization_id IN (
        SELECT id FROM members.organizations
        WHERE path LIKE (SELECT path FROM members.organizations WHERE id = district) || '%')
    ORDER BY m.id
$$;
