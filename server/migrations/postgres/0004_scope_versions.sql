-- A phone's "anything new?" check reads the versions of the documents of
-- the models in its scope's units at every poll: models by unit, and a
-- model's logs as a range of ids. The range is taken in byte order (the
-- default collation may sort '/' and '0' apart from it), so it needs an
-- index in that order.
CREATE INDEX model_units_by_unit ON model_units(unit, model);
CREATE INDEX documents_by_id_bytes ON documents (id COLLATE "C");
