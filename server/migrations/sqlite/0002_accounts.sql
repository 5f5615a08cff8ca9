-- The organisation tree as imported (validated by org::OrgTree before it is written).
CREATE TABLE units (
    code        TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL,
    parent      TEXT,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT
) WITHOUT ROWID;

CREATE TABLE successions (
    old        TEXT NOT NULL,
    new        TEXT NOT NULL,
    effective  TEXT NOT NULL,
    PRIMARY KEY (old, new)
) WITHOUT ROWID;

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    phone         TEXT UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    unit          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- A device is one login on one phone or browser. Only a hash of its token is kept.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY NOT NULL,
    account     TEXT NOT NULL REFERENCES accounts(id),
    token_hash  BLOB NOT NULL UNIQUE,
    actor       TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER,
    revoked_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX devices_by_account ON devices(account);

-- Which unit each model belongs to, kept from the model documents on every merge.
CREATE TABLE model_units (
    model  TEXT PRIMARY KEY NOT NULL,
    unit   TEXT NOT NULL
) WITHOUT ROWID;

-- Changes refused by a rule, kept with the reason so that nothing is lost.
CREATE TABLE quarantine (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    device    TEXT NOT NULL,
    account   TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    message   TEXT NOT NULL,
    changes   BLOB NOT NULL
);
