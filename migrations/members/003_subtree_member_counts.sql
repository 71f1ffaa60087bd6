-- Members in each organization's whole subtree, beside its direct count. A
-- district's totalCount is then one row: summing the direct counters of its
-- ~4 400 organizations still cost ~5 ms of PostgreSQL per staff list at
-- 1 000 000 members. A member write adds to its organization and to every
-- ancestor on its path; a change of the tree (a move changes ancestors) makes
-- refresh_organization_paths() recompute the subtree counts from the direct ones.
ALTER TABLE members.organization_member_counts ADD COLUMN subtree_members bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION members.count_members() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orgs   text[];
    deltas bigint[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM members.organization_member_counts;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(organization_id), array_agg(n) INTO orgs, deltas
        FROM (SELECT organization_id, count(*) AS n FROM new_rows GROUP BY organization_id) moved;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(organization_id), array_agg(-n) INTO orgs, deltas
        FROM (SELECT organization_id, count(*) AS n FROM old_rows GROUP BY organization_id) moved;
    ELSE  -- UPDATE: only a changed organization_id moves a count
        SELECT array_agg(organization_id), array_agg(n) INTO orgs, deltas
        FROM (SELECT organization_id, sum(d) AS n
              FROM (SELECT organization_id, 1 AS d FROM new_rows
                    UNION ALL SELECT organization_id, -1 FROM old_rows) rows
              GROUP BY organization_id HAVING sum(d) <> 0) moved;
    END IF;
    IF orgs IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO members.organization_member_counts AS c (organization_id, members)
    SELECT * FROM unnest(orgs, deltas)
    ON CONFLICT (organization_id) DO UPDATE SET members = c.members + EXCLUDED.members;
    INSERT INTO members.organization_member_counts AS c (organization_id, members, subtree_members)
    SELECT ancestor, 0, sum(d.delta)
    FROM unnest(orgs, deltas) AS d(organization_id, delta)
    JOIN members.organizations o ON o.id = d.organization_id
    CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM o.path), '/')) AS ancestor
    GROUP BY ancestor
    ON CONFLICT (organization_id) DO UPDATE SET subtree_members = c.subtree_members + EXCLUDED.subtree_members;
    RETURN NULL;
END
$$;

CREATE FUNCTION members.refresh_subtree_member_counts() RETURNS void
LANGUAGE sql AS $$
    WITH subtree AS (
        SELECT ancestor, sum(c.members) AS n
        FROM members.organization_member_counts c JOIN members.organizations o ON o.id = c.organization_id
        CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM o.path), '/')) AS ancestor
        GROUP BY ancestor),
    emptied AS (  -- organizations with no member under them any more
        UPDATE members.organization_member_counts c SET subtree_members = 0
        WHERE c.subtree_members <> 0 AND NOT EXISTS (SELECT 1 FROM subtree s WHERE s.ancestor = c.organization_id))
    INSERT INTO members.organization_member_counts AS c (organization_id, members, subtree_members)
    SELECT ancestor, 0, n FROM subtree
    ON CONFLICT (organization_id) DO UPDATE SET subtree_members = EXCLUDED.subtree_members
    WHERE c.subtree_members IS DISTINCT FROM EXCLUDED.subtree_members;
$$;

CREATE OR REPLACE FUNCTION members.refresh_organization_paths() RETURNS void
LANGUAGE sql AS $$
    WITH RECURSIVE tree (id, path) AS (
        SELECT id, '/' || id || '/' FROM members.organizations WHERE parent_id IS NULL
        UNION ALL
        SELECT o.id, t.path || o.id || '/'
        FROM members.organizations o JOIN tree t ON o.parent_id = t.id
    )
    UPDATE members.organizations o SET path = tree.path
    FROM tree WHERE o.id = tree.id AND o.path IS DISTINCT FROM tree.path;
    -- A moved organization takes its members to other ancestors.
    SELECT members.refresh_subtree_member_counts();
$$;

LOCK TABLE members.members IN SHARE MODE;
SELECT members.refresh_subtree_member_counts();
