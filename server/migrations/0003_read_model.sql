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
    attendees         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rm_records_by_day ON rm_records(occurred_on);

CREATE TABLE rm_incidents (
    record    TEXT NOT NULL,
    position  INTEGER NOT NULL,
    model     TEXT NOT NULL,
    occurred_on TEXT NOT NULL,
    category  TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    PRIMARY KEY (record, position)
) WITHOUT ROWID;
CREATE INDEX rm_incidents_by_day ON rm_incidents(occurred_on);

-- Yearly targets per unit; units without a row follow the province's rule.
CREATE TABLE targets (
    unit        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    new_models  INTEGER NOT NULL,
    typical     INTEGER NOT NULL,
    PRIMARY KEY (unit, year)
) WITHOUT ROWID;
