-- Every CA and TSA chain an instance has used, with the window clients
-- should trust it for; a new chain closes the old one's window so signatures
-- and timestamps made before the rotation keep verifying.
CREATE TABLE trust_chains (
  component   TEXT NOT NULL,          -- ca, tsa
  fingerprint TEXT NOT NULL,          -- hex SHA-256 of the first certificate
  chain_pem   TEXT NOT NULL,          -- first certificate first, root last
  valid_from  TIMESTAMPTZ NOT NULL,
  valid_to    TIMESTAMPTZ,            -- NULL: the current chain
  PRIMARY KEY (component, fingerprint)
);
