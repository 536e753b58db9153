-- Version 5 is kept for a schema change made on another line of work; this
-- placeholder changes nothing and gives way to that migration when both
-- meet.
SELECT 1;
