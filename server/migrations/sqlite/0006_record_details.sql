-- Each kind's details, for the records export: one row per record still,
-- with the columns of every kind (NULL where a kind has none).
ALTER TABLE rm_records ADD COLUMN patrol_start TEXT;
ALTER TABLE rm_records ADD COLUMN patrol_end TEXT;
ALTER TABLE rm_records ADD COLUMN members_present INTEGER;
ALTER TABLE rm_records ADD COLUMN area TEXT;
-- JSON list of the patrol's incidents in position order: deleted records
-- keep no rm_incidents rows, yet the export shows their incidents too.
ALTER TABLE rm_records ADD COLUMN incident_list TEXT NOT NULL DEFAULT '[]';
ALTER TABLE rm_records ADD COLUMN giver TEXT;
-- The receiving household as typed; `receiver` keeps the key it is counted by.
ALTER TABLE rm_records ADD COLUMN receiver_name TEXT;
ALTER TABLE rm_records ADD COLUMN support_description TEXT;
ALTER TABLE rm_records ADD COLUMN product TEXT;
ALTER TABLE rm_records ADD COLUMN quantity REAL;
ALTER TABLE rm_records ADD COLUMN quantity_unit TEXT;
ALTER TABLE rm_records ADD COLUMN topic TEXT;
ALTER TABLE rm_records ADD COLUMN note TEXT NOT NULL DEFAULT '';
-- Rows written before this migration lack the details: empty the read
-- model, and the server rebuilds it from the documents when it starts
-- (it does when rm_models holds fewer rows than model_units).
DELETE FROM rm_incidents;
DELETE FROM rm_records;
DELETE FROM rm_models;
