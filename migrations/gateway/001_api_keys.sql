-- The gateway's own state, kept in the members database: API keys.
CREATE TABLE gateway.api_keys (
    id              text PRIMARY KEY,                 -- 'key_' + public prefix; shown in lists and logs
    name            text NOT NULL CHECK (name <> ''),
    prefix          text NOT NULL UNIQUE,             -- the public part of the key, the indexed look-up
    secret_hash     bytea NOT NULL,                   -- sha256 of the whole key; the key itself is never stored
    organization_id text NOT NULL,
    scopes          text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz
);
