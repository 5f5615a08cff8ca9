-- Failed-login windows, shared by every server process on the store: one
-- row per key (an account and address, an address, an account) tried
-- within the last window.
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY NOT NULL,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_failures_by_start ON login_failures(window_start);
