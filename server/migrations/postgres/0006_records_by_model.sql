-- The staff's model list counts the records of the models on its page
-- (`model = ANY(...)`): without an index that leads with the model, each
-- page scanned every row of the read model (0.3-0.6 s over 1,000,000
-- records). SQLite's rollup index already leads with the model.
CREATE INDEX rm_records_by_model ON rm_records(model) INCLUDE (deleted, review_state, reviewed_at, updated_at);
