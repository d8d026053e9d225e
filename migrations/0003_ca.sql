-- One row per certificate the CA issued.
CREATE TABLE ca_certificates (
  serial          TEXT PRIMARY KEY,      -- lower-case hex
  issued_at       TIMESTAMPTZ NOT NULL,
  not_after       TIMESTAMPTZ NOT NULL,
  identity        TEXT NOT NULL,         -- the SAN value
  issuer          TEXT NOT NULL,         -- OIDC issuer (token iss)
  subject         TEXT NOT NULL,         -- token sub
  key_fingerprint TEXT NOT NULL          -- hex SHA-256 of the public key's PKIX DER
);

CREATE INDEX ca_certificates_identity ON ca_certificates (identity, issued_at);
