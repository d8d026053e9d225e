-- A log whose key was rotated keeps its row under "<name>@<tree_id>" with the
-- time it stopped signing, so the trusted root can keep its key for what it
-- signed before.
ALTER TABLE signet_logs ADD COLUMN retired_at TIMESTAMPTZ;
