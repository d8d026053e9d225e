-- One row per time-stamp token the TSA issued.
CREATE TABLE tsa_timestamps (
  serial    TEXT PRIMARY KEY,       -- lower-case hex
  gen_time  TIMESTAMPTZ NOT NULL,
  hash_alg  TEXT NOT NULL,          -- sha256, sha384, sha512
  imprint   TEXT NOT NULL,          -- hex of the message imprint
  policy    TEXT NOT NULL           -- dotted OID
);

CREATE INDEX tsa_timestamps_gen_time ON tsa_timestamps (gen_time);
