-- One live owner per station: an instance configured with a station another
-- live instance holds refuses it, and says so here for the operators.
ALTER TABLE stations ADD COLUMN refused_by text, ADD COLUMN refused_at timestamptz;
