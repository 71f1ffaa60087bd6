-- Trusted documents: operations registered ahead of time, found by the SHA-256 of their text.
-- origin 'manifest': loaded by an operator (`union-gateway documents load`); the only ones a
-- trusted-documents-only key may run. origin 'apq': registered by a first-party client through
-- Apollo's automatic persisted queries; a cache, not a vetting.
CREATE TABLE gateway.trusted_documents (
    hash       text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    document   text NOT NULL,
    origin     text NOT NULL CHECK (origin IN ('manifest', 'apq')),
    name       text,                                  -- the operation name(s), for listings
    created_at timestamptz NOT NULL DEFAULT now()
);
