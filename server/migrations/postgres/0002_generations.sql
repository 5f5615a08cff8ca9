-- Counters of shared state that server processes keep in memory: each
-- process compares its copy's count with the stored one at every request
-- and reloads when another process changed it.
CREATE TABLE generations (
    name     TEXT PRIMARY KEY,
    version  BIGINT NOT NULL
);
INSERT INTO generations (name, version) VALUES ('org', 0);
