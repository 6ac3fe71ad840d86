-- P-8 store schema, version 1: the database identity and epoch, channel logs, held-request records.
-- Times are milliseconds since 1970 (UTC). Never edit this file once shipped: add a new numbered file.

-- Marks the file as a P-8 database ("P8", 0x5038, in the high bytes); a file with another id is refused.
PRAGMA application_id = 1345847297;

-- One row: the database's identity. The epoch is random and made once, when the database is created;
-- a wiped or restored database has a new one, a restarted server the same one.
CREATE TABLE store (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);
INSERT INTO store (id, epoch, createdAt)
VALUES (1, lower(hex(randomblob(8))), CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- A channel ever published to. Rows are kept when every item is trimmed, so that `lastSequence` is never reused.
CREATE TABLE channel (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The sequence of the newest item ever appended (0 before the first).
    lastSequence INTEGER NOT NULL DEFAULT 0,
    -- The highest sequence removed by retention (0 if none): cursors at or below it are older than retained.
    trimmedThrough INTEGER NOT NULL DEFAULT 0,
    -- Retained items and the sum of their sizes, maintained with every append and trim.
    itemCount INTEGER NOT NULL DEFAULT 0,
    byteCount INTEGER NOT NULL DEFAULT 0
);

-- A published item in its channel's log. Rows are stored in append order (`id`), so that a commit writes few
-- pages whatever the number of channels; `(channelId, sequence)` finds a channel's items.
CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    channelId INTEGER NOT NULL REFERENCES channel(id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    -- The publisher's id, or the one P-8 assigned ("{epoch}-{sequence}", with the epoch of the time).
    itemId TEXT NOT NULL,
    -- 1 if P-8 assigned the id: such ids resolve through their sequence and need no index entry.
    isAssignedId INTEGER NOT NULL,
    prevId TEXT,
    -- The published formats, opaque to the store (as encoded by the publisher side).
    formats BLOB NOT NULL,
    size INTEGER NOT NULL,
    publishedAt INTEGER NOT NULL
);
CREATE UNIQUE INDEX item_on_channelId_sequence ON item(channelId, sequence);
CREATE UNIQUE INDEX item_on_channelId_itemId ON item(channelId, itemId) WHERE isAssignedId = 0;

-- A held request (long-poll or stream) or WebSocket session, recorded for p8ctl and restart reconciliation.
CREATE TABLE hold (
    id TEXT PRIMARY KEY NOT NULL,
    -- The process instance that holds it.
    instance TEXT NOT NULL,
    mode TEXT NOT NULL,
    route TEXT,
    clientAddress TEXT,
    startedAt INTEGER NOT NULL,
    timeoutAt INTEGER,
    -- Opaque encodings from the holding side (keep-alive, next/gone links, timeout response).
    keepAlive BLOB,
    links BLOB,
    timeoutResponse BLOB,
    updatedAt INTEGER NOT NULL,
    -- Set when a later instance found the record at start-up: its holder is gone.
    orphanedAt INTEGER
);
CREATE INDEX hold_on_instance ON hold(instance);

-- A channel of a hold, with the position last delivered on it.
CREATE TABLE holdChannel (
    holdId TEXT NOT NULL REFERENCES hold(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    -- The channel's place in the hold's list.
    position INTEGER NOT NULL,
    lastId TEXT,
    lastSequence INTEGER,
    PRIMARY KEY (holdId, channel)
) WITHOUT ROWID;
CREATE INDEX holdChannel_on_channel ON holdChannel(channel);
