-- A parcel's state (its request's status and its failed attempts) is the
-- fold of its courier events (src/parcel.c). state_folded says that the
-- stored state is that fold, with a branch to return to, of every event up
-- to last_event_at: then an event later than all of them moves it by one
-- step, without reading the others. Parcels with events from before this
-- column are folded again at their next event.
ALTER TABLE parcels ADD COLUMN state_folded boolean NOT NULL DEFAULT false;
ALTER TABLE parcels ALTER COLUMN state_folded SET DEFAULT true;
UPDATE parcels SET state_folded = true WHERE last_event_at IS NULL;
