-- Per-key operation and rate limits. NULL: the default from settings (UNION_GATEWAY_MAX_DEPTH, ...).
ALTER TABLE gateway.api_keys
    ADD COLUMN max_depth              integer CHECK (max_depth > 0),
    ADD COLUMN max_aliases            integer CHECK (max_aliases >= 0),
    ADD COLUMN max_root_fields        integer CHECK (max_root_fields > 0),
    ADD COLUMN max_tokens             integer CHECK (max_tokens > 0),
    ADD COLUMN max_cost               integer CHECK (max_cost > 0),
    ADD COLUMN rate_points            integer CHECK (rate_points > 0),
    ADD COLUMN rate_window_seconds    double precision CHECK (rate_window_seconds > 0),
    -- Third-party apps: only operations registered by an operator may run.
    ADD COLUMN trusted_documents_only boolean;
