-- P-8 store schema for PostgreSQL, version 1: what the SQLite migrations 0001 and 0002 hold, for several P-8
-- nodes sharing one database. Times are milliseconds since 1970 (UTC). Never edit this file once shipped: add a
-- new numbered file. Applied in file-name order and recorded in p8_migration (see PostgreSQLMigrations.swift).

-- One row: the database's identity. The epoch is random and made once, when the database is created: one per
-- database, whichever node answers.
CREATE TABLE store (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO store (id, epoch, created_at)
VALUES (1, substr(md5(random()::text || clock_timestamp()::text), 1, 16),
    (extract(epoch FROM now()) * 1000)::BIGINT);

-- A channel ever published to. Its row is the lock that serialises appends to the channel across nodes: an
-- append transaction takes it FOR UPDATE, then gives sequences after last_sequence.
CREATE TABLE channel (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_sequence BIGINT NOT NULL DEFAULT 0,
    trimmed_through BIGINT NOT NULL DEFAULT 0,
    item_count BIGINT NOT NULL DEFAULT 0,
    byte_count BIGINT NOT NULL DEFAULT 0,
    -- The reordering buffer's chain position (see SQLite's 0002).
    chain_last_id TEXT
);

-- A published item in its channel's log; `id` is the global append order (retention's byte budget uses it).
CREATE TABLE item (
    id BIGSERIAL PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channel(id) ON DELETE CASCADE,
    sequence BIGINT NOT NULL,
    item_id TEXT NOT NULL,
    is_assigned_id BOOLEAN NOT NULL,
    prev_id TEXT,
    formats BYTEA NOT NULL,
    size INTEGER NOT NULL,
    published_at BIGINT NOT NULL,
    -- Item metadata for content filters (issue 18), NULL when there is none.
    meta BYTEA
);
CREATE UNIQUE INDEX item_on_channel_id_sequence ON item(channel_id, sequence);
CREATE UNIQUE INDEX item_on_channel_id_item_id ON item(channel_id, item_id) WHERE NOT is_assigned_id;

-- Items committed but waiting in the reordering buffer for their predecessor, in arrival order (`id`).
CREATE TABLE pending_item (
    id BIGSERIAL PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channel(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    prev_id TEXT NOT NULL,
    formats BYTEA NOT NULL,
    size INTEGER NOT NULL,
    published_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    meta BYTEA,
    UNIQUE (channel_id, item_id)
);

-- A held request or WebSocket session of one node instance.
CREATE TABLE hold (
    id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    mode TEXT NOT NULL,
    route TEXT,
    client_address TEXT,
    started_at BIGINT NOT NULL,
    timeout_at BIGINT,
    keep_alive BYTEA,
    links BYTEA,
    timeout_response BYTEA,
    updated_at BIGINT NOT NULL,
    orphaned_at BIGINT
);
CREATE INDEX hold_on_instance ON hold(instance);

CREATE TABLE hold_channel (
    hold_id TEXT NOT NULL REFERENCES hold(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    position INTEGER NOT NULL,
    last_id TEXT,
    last_sequence BIGINT,
    PRIMARY KEY (hold_id, channel)
);
CREATE INDEX hold_channel_on_channel ON hold_channel(channel);
