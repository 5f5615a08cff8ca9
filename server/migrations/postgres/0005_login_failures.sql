-- Failed-login windows, shared by every server process on the database:
-- one row per key (an account and address, an address, an account) counted
-- within its window. Only the login throttle's own pool touches it.
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL
);
CREATE INDEX login_failures_by_start ON login_failures(window_start);
