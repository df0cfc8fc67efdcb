-- Operations: rules, alerts, incidents (timeline, attachments), SOP
-- templates, notification deliveries and in-console notifications.
-- Severities are stored as ranks (1 low … 4 critical) so they compare.

CREATE TABLE rules (
    id         TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    origin     TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

-- Alerts outlive their rule (history), so `rule` has no foreign key.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    key             TEXT NOT NULL,
    severity        INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status          TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title           TEXT NOT NULL,
    domain          TEXT,
    admin_unit      TEXT,
    entity          TEXT,
    entity_type     TEXT,
    attribute       TEXT,
    source          TEXT,
    indicator       TEXT,
    lon             REAL,
    lat             REAL,
    value           REAL,
    last_value      REAL,
    data            TEXT NOT NULL,
    fired_at        INTEGER NOT NULL,
    opened_at       INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    occurrences     INTEGER NOT NULL DEFAULT 1,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    resolved_at     INTEGER,
    resolved_by     TEXT,
    resolution      TEXT,
    incident        INTEGER REFERENCES incidents (id)
);
-- While the condition lasts there is one alert: the deduplication holds
-- across restarts and concurrent writers because the database enforces it.
CREATE UNIQUE INDEX alerts_one_unresolved ON alerts (rule, key) WHERE status <> 'resolved';
CREATE INDEX alerts_by_status ON alerts (status, id);
CREATE INDEX alerts_by_rule ON alerts (rule, id);
CREATE INDEX alerts_by_incident ON alerts (incident) WHERE incident IS NOT NULL;

CREATE TABLE alert_steps (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert   INTEGER NOT NULL REFERENCES alerts (id),
    action  TEXT NOT NULL,
    actor   TEXT NOT NULL,
    at      INTEGER NOT NULL,
    comment TEXT
);
CREATE INDEX alert_steps_by_alert ON alert_steps (alert, id);

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    title            TEXT NOT NULL,
    type             TEXT NOT NULL,
    severity         INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status           TEXT NOT NULL CHECK (status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed', 'reopened')),
    description      TEXT,
    domain           TEXT REFERENCES domains (code),
    admin_unit       TEXT REFERENCES admin_units (code),
    lon              REAL,
    lat              REAL,
    agency           TEXT REFERENCES agencies (code),
    assignee         TEXT REFERENCES users (username),
    origin           TEXT NOT NULL,
    origin_ref       TEXT,
    created_at       INTEGER NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       INTEGER NOT NULL,
    respond_by       INTEGER,
    resolve_by       INTEGER,
    responded_at     INTEGER,
    resolved_at      INTEGER,
    closed_at        INTEGER,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    next_check_at    INTEGER,
    checklist        TEXT NOT NULL DEFAULT '[]',
    version          INTEGER NOT NULL CHECK (version >= 1)
);
CREATE INDEX incidents_by_status ON incidents (status, id);
CREATE INDEX incidents_due ON incidents (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE incident_timeline (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    incident INTEGER NOT NULL REFERENCES incidents (id),
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    text     TEXT,
    data     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_timeline_by_incident ON incident_timeline (incident, id);

-- The content lives in the data dir under attachments/<incident>/<id>.
CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident     INTEGER NOT NULL REFERENCES incidents (id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  INTEGER NOT NULL
);
CREATE INDEX attachments_by_incident ON attachments (incident, id);

CREATE TABLE sop_templates (
    incident_type TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    steps         TEXT NOT NULL
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    delivery    INTEGER NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    code        INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery, attempt)
);

CREATE TABLE notifications (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    event    TEXT NOT NULL,
    title    TEXT NOT NULL,
    body     TEXT,
    link     TEXT,
    severity INTEGER,
    read_at  INTEGER
);
CREATE INDEX notifications_by_user ON notifications (username, id);
