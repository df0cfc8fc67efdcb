-- NGSI-LD documents: what the catalogue cannot hold (relationships,
-- sub-properties, datasetId, several types, attributes exactly as given).
-- A NULL doc is a tombstone: the entity was deleted through NGSI-LD.
CREATE TABLE ngsild_entities (
    id          TEXT PRIMARY KEY NOT NULL,
    doc         TEXT,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
