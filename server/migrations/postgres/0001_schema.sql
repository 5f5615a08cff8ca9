-- The PostgreSQL store: the same tables as the embedded SQLite store (its
-- migrations 0001-0004 together), in PostgreSQL's types.

-- Documents: the latest snapshot, plus change chunks appended since. A
-- write is kept only on the version it was merged on (see store/mod.rs).
CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    snapshot    BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 0,
    writer      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE chunks (
    seq      BIGSERIAL PRIMARY KEY,
    doc_id   TEXT NOT NULL REFERENCES documents(id),
    version  BIGINT NOT NULL DEFAULT 0,
    data     BYTEA NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, version);

-- What each device and the server both hold, per document (automerge sync::State::encode).
CREATE TABLE sync_states (
    device  TEXT NOT NULL,
    doc_id  TEXT NOT NULL,
    state   BYTEA NOT NULL,
    PRIMARY KEY (device, doc_id)
);

-- The organisation tree as imported (validated by org::OrgTree before it is written).
CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL,
    parent      TEXT,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT
);

CREATE TABLE successions (
    old        TEXT NOT NULL,
    new        TEXT NOT NULL,
    effective  TEXT NOT NULL,
    PRIMARY KEY (old, new)
);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    phone         TEXT UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    unit          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- A device is one login on one phone or browser. Only a hash of its token is kept.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts(id),
    token_hash  BYTEA NOT NULL UNIQUE,
    actor       TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX devices_by_account ON devices(account);

-- Which unit each model belongs to, kept from the model documents on every merge.
CREATE TABLE model_units (
    model  TEXT PRIMARY KEY,
    unit   TEXT NOT NULL
);

-- Changes refused by a rule, kept with the reason so that nothing is lost.
CREATE TABLE quarantine (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    device    TEXT NOT NULL,
    account   TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    message   TEXT NOT NULL,
    changes   BYTEA NOT NULL
);
CREATE INDEX quarantine_by_device ON quarantine(device, id);

-- The read model: flat rows of models and records, written in the same
-- transaction as each merge, so that reports never load Automerge documents.
CREATE TABLE rm_models (
    model             TEXT PRIMARY KEY,
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
    members           BIGINT NOT NULL,
    households        BIGINT NOT NULL
);

CREATE TABLE rm_records (
    record            TEXT PRIMARY KEY,
    model             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    occurred_on       TEXT NOT NULL,
    deleted           BOOLEAN NOT NULL,
    review_state      TEXT NOT NULL,
    author            TEXT NOT NULL,
    incidents         BIGINT NOT NULL,
    handed_to_police  BIGINT NOT NULL,
    supported_police  BIGINT NOT NULL,
    receiver          TEXT,
    support_type      TEXT,
    amount_vnd        BIGINT NOT NULL,
    workdays          DOUBLE PRECISION NOT NULL,
    houses            BIGINT NOT NULL,
    revenue_vnd       BIGINT NOT NULL,
    attendees         BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    reviewer          TEXT,
    reviewed_at       BIGINT,
    review_comment    TEXT NOT NULL,
    -- JSON list of fields two devices changed concurrently (path and values).
    conflicts         TEXT NOT NULL
);
-- Rollups read the period's rows from these indexes alone (index-only scans).
CREATE INDEX rm_records_rollup ON rm_records(occurred_on, model)
    INCLUDE (deleted, review_state, kind, incidents, handed_to_police, supported_police,
             amount_vnd, workdays, houses, revenue_vnd, attendees);
CREATE INDEX rm_records_receivers ON rm_records(kind, occurred_on) INCLUDE (model, deleted, review_state, receiver);

CREATE TABLE rm_incidents (
    record        TEXT NOT NULL,
    position      BIGINT NOT NULL,
    model         TEXT NOT NULL,
    occurred_on   TEXT NOT NULL,
    review_state  TEXT NOT NULL,
    category      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    PRIMARY KEY (record, position)
);
CREATE INDEX rm_incidents_rollup ON rm_incidents(occurred_on) INCLUDE (model, review_state, category, outcome);

-- Yearly targets per unit; units without a row follow the province's rule.
CREATE TABLE targets (
    unit        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    new_models  BIGINT NOT NULL,
    typical     BIGINT NOT NULL,
    PRIMARY KEY (unit, year)
);
