-- /metrics reads what changed since its last scrape, never the whole history: orders that ended are folded once
-- into running totals (their count by status and venue, the time each reached each status, their retries), and a
-- scrape adds to those totals only the orders still moving (orders_unfinished) and those that ended since the last
-- fold (orders_unfolded).
ALTER TABLE orders ADD COLUMN folded boolean NOT NULL DEFAULT false;
CREATE INDEX orders_unfolded ON orders (id) WHERE status IN ('confirmed', 'failed', 'cancelled', 'expired') AND NOT folded;

CREATE TABLE metrics_rollup (
    id       boolean            PRIMARY KEY DEFAULT true CHECK (id),  -- one row
    bounds   double precision[] NOT NULL,  -- the latency histogram's bucket bounds the totals were made with
    retries  bigint             NOT NULL,
    sweeps   bigint             NOT NULL
);
INSERT INTO metrics_rollup VALUES (true, '{}', 0, 0);

CREATE TABLE metrics_rollup_counts (
    status  text    NOT NULL,
    venue   text    NOT NULL,
    n       bigint  NOT NULL,
    PRIMARY KEY (status, venue)
);

CREATE TABLE metrics_rollup_latencies (
    status   text              PRIMARY KEY,
    buckets  bigint[]          NOT NULL,  -- cumulative: orders that reached the status within each bound
    total    double precision  NOT NULL,
    n        bigint            NOT NULL
);
