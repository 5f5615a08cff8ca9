-- Photos (docs/PROTOCOL.md §13). The read model gets a row per attachment,
-- what the blob endpoints check an upload or a read against, and each
-- record the hashes of its live photos, for the records export.
CREATE TABLE rm_attachments (
    record      TEXT NOT NULL,
    attachment  TEXT NOT NULL,
    model       TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    taken_at    INTEGER NOT NULL,
    caption     TEXT NOT NULL,
    deleted     INTEGER NOT NULL,
    PRIMARY KEY (record, attachment)
) WITHOUT ROWID;
CREATE INDEX rm_attachments_sha256 ON rm_attachments(sha256);
-- The live photos' hashes, space-separated, in the record's order.
ALTER TABLE rm_records ADD COLUMN photos TEXT NOT NULL DEFAULT '';

-- A whole blob (rowid tables: SQLite keeps large values better there): the stored copy (metadata stripped) and its thumbnail.
-- `bytes` is the size of what was uploaded (what the hash names), which is
-- what the first device's quota counts.
CREATE TABLE blobs (
    sha256        TEXT PRIMARY KEY NOT NULL,
    media_type    TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    content       BLOB NOT NULL,
    thumbnail     BLOB NOT NULL,
    first_device  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX blobs_first_device ON blobs(first_device);

-- A device's unfinished upload and the parts it sent, each durable once
-- acknowledged; `total` counts against the device's quota until it ends.
CREATE TABLE blob_uploads (
    sha256      TEXT NOT NULL,
    device      TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    total       INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (sha256, device)
) WITHOUT ROWID;
CREATE INDEX blob_uploads_device ON blob_uploads(device);
CREATE INDEX blob_uploads_updated ON blob_uploads(updated_at);
CREATE TABLE blob_parts (
    sha256  TEXT NOT NULL,
    device  TEXT NOT NULL,
    part_start INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (sha256, device, part_start)
);

-- Rows written before this migration lack the attachments: empty the read
-- model, and the server rebuilds it from the documents when it starts
-- (it does when rm_models holds fewer rows than model_units).
DELETE FROM rm_incidents;
DELETE FROM rm_records;
DELETE FROM rm_models;
