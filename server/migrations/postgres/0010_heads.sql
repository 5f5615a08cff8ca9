-- The heads each document is at, so that a phone's quiet sync finds the
-- documents it lacks something in without loading any: every document
-- write sets them (NULL, "unknown", when a writer does not say), and NULL
-- counts as news.
ALTER TABLE documents ADD COLUMN heads BYTEA;
