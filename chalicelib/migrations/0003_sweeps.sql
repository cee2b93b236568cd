-- How many times the sweeper has re-enqueued an order that stopped making progress.
ALTER TABLE orders ADD COLUMN sweeps integer NOT NULL DEFAULT 0;
