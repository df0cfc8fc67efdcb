-- Panorama embedded store, schema version 1.
-- Times are INTEGER microseconds since the Unix epoch (UTC); days are TEXT
-- 'YYYY-MM-DD'; GeoJSON and other structured values are JSON TEXT.

CREATE TABLE admin_units (
    code       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    name_en    TEXT,
    level      TEXT NOT NULL CHECK (level IN ('country', 'province', 'district', 'commune')),
    parent     TEXT REFERENCES admin_units (code),
    geometry   TEXT,
    valid_from TEXT,
    valid_to   TEXT
);
CREATE INDEX admin_units_by_parent ON admin_units (parent);

-- Successors may name units not (yet) in the store, so no foreign key on them.
CREATE TABLE admin_unit_successors (
    unit      TEXT NOT NULL REFERENCES admin_units (code) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    successor TEXT NOT NULL,
    PRIMARY KEY (unit, position)
);

CREATE TABLE domains (
    code    TEXT PRIMARY KEY NOT NULL,
    name    TEXT NOT NULL,
    name_en TEXT NOT NULL,
    icon    TEXT NOT NULL,
    sort    INTEGER NOT NULL
);

CREATE TABLE agencies (
    code       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    admin_unit TEXT REFERENCES admin_units (code)
);

CREATE TABLE entities (
    id          TEXT PRIMARY KEY NOT NULL,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- Lower-case name and id without diacritics, for accent-insensitive search.
    search_text TEXT NOT NULL,
    domain      TEXT NOT NULL REFERENCES domains (code),
    admin_unit  TEXT REFERENCES admin_units (code),
    -- The representative point of `location`, for box and area filters.
    lon         REAL,
    lat         REAL,
    location    TEXT,
    properties  TEXT NOT NULL DEFAULT '{}',
    source      TEXT,
    updated_at  INTEGER
);
CREATE INDEX entities_by_type ON entities (type, id);
CREATE INDEX entities_by_domain ON entities (domain, id);
CREATE INDEX entities_by_admin_unit ON entities (admin_unit, id);

-- One row per (entity, attribute) ever declared. `series` is the dense id the
-- time-series engine knows; it never changes, so an attribute dropped from an
-- entity and declared again finds its history (`declared` = 0 meanwhile).
CREATE TABLE series (
    series     INTEGER PRIMARY KEY NOT NULL CHECK (series >= 0 AND series <= 4294967295),
    entity     TEXT NOT NULL REFERENCES entities (id),
    attribute  TEXT NOT NULL,
    value_type TEXT NOT NULL CHECK (value_type IN ('number', 'text', 'boolean', 'json')),
    unit       TEXT,
    declared   INTEGER NOT NULL DEFAULT 1,
    UNIQUE (entity, attribute)
);

CREATE TABLE indicators (
    code         TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    name_en      TEXT NOT NULL,
    domain       TEXT NOT NULL REFERENCES domains (code),
    unit         TEXT NOT NULL,
    periodicity  TEXT NOT NULL,
    direction    TEXT NOT NULL,
    targets      TEXT NOT NULL,
    thresholds   TEXT NOT NULL,
    owner_agency TEXT REFERENCES agencies (code),
    computation  TEXT NOT NULL,
    source       TEXT,
    headline     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX indicators_by_domain ON indicators (domain, code);

-- Every revision is kept; the current value is the highest revision.
CREATE TABLE indicator_values (
    indicator    TEXT NOT NULL REFERENCES indicators (code),
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    admin_unit   TEXT NOT NULL REFERENCES admin_units (code),
    revision     INTEGER NOT NULL CHECK (revision >= 1),
    value        REAL NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('provisional', 'final', 'revised')),
    submitted_by TEXT NOT NULL,
    submitted_at INTEGER NOT NULL,
    note         TEXT,
    PRIMARY KEY (indicator, period, admin_unit, revision)
);
CREATE INDEX indicator_values_by_unit ON indicator_values (admin_unit, period_start);

CREATE TABLE sources (
    id                     TEXT PRIMARY KEY NOT NULL,
    name                   TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    owner_agency           TEXT REFERENCES agencies (code),
    domain                 TEXT REFERENCES domains (code),
    expected_interval_secs INTEGER NOT NULL,
    token_sha256           BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at             INTEGER NOT NULL,
    last_seen_at           INTEGER,
    accepted               INTEGER NOT NULL DEFAULT 0,
    rejected               INTEGER NOT NULL DEFAULT 0,
    last_error             TEXT
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    agency        TEXT REFERENCES agencies (code),
    created_at    INTEGER NOT NULL,
    password_hash TEXT NOT NULL
);

CREATE TABLE sessions (
    token_sha256 BLOB PRIMARY KEY NOT NULL CHECK (length(token_sha256) = 32),
    username     TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
