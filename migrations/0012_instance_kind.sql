-- Which kind of instance the database belongs to, recorded by the first
-- server that starts on it: a dev instance (dev mode: generated keys, an
-- OIDC issuer that signs tokens for anyone) or a production one. Dev mode
-- refuses a production database and production a dev one, so an exported
-- DATABASE_URL cannot have one rewrite the other's trees and chains.
CREATE TABLE signet_instance (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    kind       text NOT NULL CHECK (kind IN ('dev', 'production')),
    created_at timestamptz NOT NULL DEFAULT now()
);
