-- Failed-login windows, in a file of their own beside the documents' store
-- (see `store/sqlite_logins.rs`): one row per key (an account and address,
-- an address, an account) counted within its window.
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY NOT NULL,
    window_start  INTEGER NOT NULL,
    count         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_failures_by_start ON login_failures(window_start);
