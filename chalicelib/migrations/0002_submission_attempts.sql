-- How many times the swap has been submitted to a venue; transient failures are retried up to a limit.
ALTER TABLE orders ADD COLUMN attempts integer NOT NULL DEFAULT 0;
