-- A phone's "anything new?" check reads the versions of the documents of
-- the models in its scope's units at every poll: models by unit.
CREATE INDEX model_units_by_unit ON model_units(unit, model);
