-- Placeholder replaced by the Store issue's schema.
SELECT 1;
