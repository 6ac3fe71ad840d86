-- P-8 store schema, version 3: each item's meta (grip-spec §4.1: `sender`, `skip_users`, `require_sub`, ...), so that
-- the delivery and content filters apply to items replayed on resume as they do to live ones. Opaque to the store
-- (a JSON object of strings, as encoded by the publisher side); NULL when the item has none, as for every item
-- appended before this version.
ALTER TABLE item ADD COLUMN meta BLOB;
