-- The read model: flat rows of models and records, written in the same
-- transaction as each merge, so that reports never load Automerge documents.
CREATE TABLE rm_models (
    model             TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    field             TEXT NOT NULL,
    unit              TEXT NOT NULL,
    status            TEXT NOT NULL,
    started_on        TEXT NOT NULL,
    building_year     INTEGER,
    recognised_year   INTEGER,
    typical_year      INTEGER,
    replicating_year  INTEGER,
    stopped_year      INTEGER,
    replicated_from   TEXT,
    members           INTEGER NOT NULL,
    households        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE rm_records (
    record            TEXT PRIMARY KEY NOT NULL,
    model             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    occurred_on       TEXT NOT NULL,
    deleted           INTEGER NOT NULL,
    review_state      TEXT NOT NULL,
    author            TEXT NOT NULL,
    incidents         INTEGER NOT NULL,
    handed_to_police  INTEGER NOT NULL,
    supported_police  INTEGER NOT NULL,
    receiver          TEXT,
    support_type      TEXT,
    amount_vnd        INTEGER NOT NULL,
    workdays          REAL NOT NULL,
    houses            INTEGER NOT NULL,
    revenue_vnd       INTEGER NOT NULL,
    attendees         INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    reviewer          TEXT,
    reviewed_at       INTEGER,
    review_comment    TEXT NOT NULL,
    -- JSON list of fields two devices changed concurrently (path and values).
    conflicts         TEXT NOT NULL
) WITHOUT ROWID;
-- Covering index for rollups: ordered by model, so GROUP BY model streams
-- without a sort, and holding every aggregated column, so a rollup reads
-- the index alone instead of looking each row up by its random record id.
CREATE INDEX rm_records_rollup ON rm_records(
    model, occurred_on, deleted, review_state, kind, incidents, handed_to_police, supported_police,
    amount_vnd, workdays, houses, revenue_vnd, attendees
);
-- Households supported are counted distinct per model: a separate, narrow
-- index over support records only keeps that count off the main pass.
CREATE INDEX rm_records_receivers ON rm_records(kind, model, occurred_on, deleted, review_state, receiver);

-- Incidents carry their record's review state (rewritten with the record),
-- so counting them never joins back to rm_records.
CREATE TABLE rm_incidents (
    record        TEXT NOT NULL,
    position      INTEGER NOT NULL,
    model         TEXT NOT NULL,
    occurred_on   TEXT NOT NULL,
    review_state  TEXT NOT NULL,
    category      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    PRIMARY KEY (record, position)
) WITHOUT ROWID;
CREATE INDEX rm_incidents_rollup ON rm_incidents(model, occurred_on, review_state, category, outcome);

-- Yearly targets per unit; units without a row follow the province's rule.
CREATE TABLE targets (
    unit        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    new_models  INTEGER NOT NULL,
    typical     INTEGER NOT NULL,
    PRIMARY KEY (unit, year)
) WITHOUT ROWID;
