-- Which write each document and chunk is at: several server processes may
-- share the store, and a write is kept only on the version it was merged on.
-- Documents stored before count as version (0, 0).
ALTER TABLE documents ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN writer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
DROP INDEX chunks_by_doc;
CREATE INDEX chunks_by_doc ON chunks(doc_id, version);
