-- P-8 store schema, version 2: the reordering buffer (grip-spec §5.1) moves into the store, so that a channel's
-- log is in the order its live subscribers are given (prev-id chain order), and items that wait for a missing
-- predecessor are durable before the publisher is acknowledged.

-- The id of the last item that entered the channel's log in sequence (NULL: no chain position, e.g. after an
-- item without id): an item whose prev-id differs from it waits in `pendingItem`.
ALTER TABLE channel ADD COLUMN chainLastId TEXT;

-- Items committed (acknowledged) but not yet in their channel's log, in arrival order (rowid): each waits for the item its prev-id names,
-- at most `message_wait` after `receivedAt`, then enters the log (and reaches subscribers) in chain order.
CREATE TABLE pendingItem (
    channelId INTEGER NOT NULL REFERENCES channel(id) ON DELETE CASCADE,
    itemId TEXT NOT NULL,
    prevId TEXT NOT NULL,
    formats BLOB NOT NULL,
    -- The item meta, as for `item` (migration 0003); NULL when it has none.
    meta BLOB,
    size INTEGER NOT NULL,
    publishedAt INTEGER NOT NULL,
    receivedAt INTEGER NOT NULL,
    UNIQUE (channelId, itemId)
);
