-- The members source: the union's organization tree, employers and members.
CREATE TABLE members.organizations (
    id         text PRIMARY KEY CHECK (id <> '' AND strpos(id, '/') = 0),
    name       text NOT NULL CHECK (name <> ''),
    level      text NOT NULL CHECK (level IN ('CITY', 'DISTRICT', 'GRASSROOTS')),
    parent_id  text REFERENCES members.organizations (id),
    -- Materialized path '/city/district/grassroots/'. Chosen over ltree (a
    -- contrib extension the embedded PostgreSQL does not ship) and over a
    -- closure table (N rows per org to maintain): "X under Y" is
    -- `x.path LIKE y.path || '%'`, and "everything under Y" one range scan
    -- of the text_pattern_ops index below. Kept right by
    -- members.refresh_organization_paths() after every write of the tree.
    path       text NOT NULL DEFAULT '',
    CHECK ((level = 'CITY') = (parent_id IS NULL))
);
CREATE INDEX organizations_path_idx ON members.organizations (path text_pattern_ops);
CREATE INDEX organizations_parent_idx ON members.organizations (parent_id);

-- Recomputes every path from parent_id in one statement; the tree has
-- thousands of rows, not millions, so a full recompute stays cheap and is
-- right after any re-parenting.
CREATE FUNCTION members.refresh_organization_paths() RETURNS void
LANGUAGE sql AS $$
    WITH RECURSIVE tree (id, path) AS (
        SELECT id, '/' || id || '/' FROM members.organizations WHERE parent_id IS NULL
        UNION ALL
        SELECT o.id, t.path || o.id || '/'
        FROM members.organizations o JOIN tree t ON o.parent_id = t.id
    )
    UPDATE members.organizations o SET path = tree.path
    FROM tree WHERE o.id = tree.id AND o.path IS DISTINCT FROM tree.path;
$$;

CREATE TABLE members.employers (
    id              text PRIMARY KEY CHECK (id <> ''),
    name            text NOT NULL CHECK (name <> ''),
    credit_code     text NOT NULL CHECK (char_length(credit_code) = 18),
    industry        text,
    organization_id text REFERENCES members.organizations (id)
);
CREATE INDEX employers_organization_idx ON members.employers (organization_id);

CREATE TABLE members.members (
    id              text PRIMARY KEY CHECK (id <> ''),
    name            text NOT NULL CHECK (name <> ''),
    gender          text NOT NULL CHECK (gender IN ('FEMALE', 'MALE')),
    birth_date      date NOT NULL,
    national_id     text NOT NULL UNIQUE CHECK (national_id ~ '^[0-9]{17}[0-9X]$'),
    phone           text,
    employment_type text NOT NULL CHECK (employment_type IN ('REGULAR', 'DISPATCHED')),
    employer_id     text NOT NULL REFERENCES members.employers (id),
    organization_id text NOT NULL REFERENCES members.organizations (id),
    joined_on       date NOT NULL
);
-- (organization_id, id): visibility filter plus keyset order in one index.
CREATE INDEX members_organization_idx ON members.members (organization_id, id);
CREATE INDEX members_employer_idx ON members.members (employer_id, id);
