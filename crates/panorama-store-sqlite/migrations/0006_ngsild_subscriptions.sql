-- NGSI-LD subscriptions, one JSON document each.
CREATE TABLE ngsild_subscriptions (
    id          TEXT PRIMARY KEY NOT NULL,
    doc         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
