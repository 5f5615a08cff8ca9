-- Documents: the latest snapshot, plus change chunks appended since.
CREATE TABLE documents (
    id          TEXT PRIMARY KEY NOT NULL,
    snapshot    BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE chunks (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id  TEXT NOT NULL REFERENCES documents(id),
    data    BLOB NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, seq);

-- What each device and the server both hold, per document (automerge sync::State::encode).
CREATE TABLE sync_states (
    device  TEXT NOT NULL,
    doc_id  TEXT NOT NULL,
    state   BLOB NOT NULL,
    PRIMARY KEY (device, doc_id)
) WITHOUT ROWID;
