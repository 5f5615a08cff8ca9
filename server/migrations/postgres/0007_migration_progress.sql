-- Marks a database that `kheo-server admin migrate-store` writes into, with
-- the store it copies from: a run that was cut off resumes into a database
-- it partly filled itself, and any other non-empty database is refused.
CREATE TABLE migration_progress (
    source       TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
