-- Box and area filters pre-select entities by their point before the exact
-- test; index the point so that pre-selection does not scan every entity.
CREATE INDEX entities_by_point ON entities (lon, lat);
