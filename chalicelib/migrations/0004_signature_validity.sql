-- Until when the venues accept the order's signed swap (a Solana transaction's recent blockhash expires).
ALTER TABLE orders ADD COLUMN valid_until timestamptz;

-- The venues remember failed transactions as a chain does: a signature that failed can never execute afterwards.
CREATE TABLE dex.failed_transactions (
    signature text        PRIMARY KEY,
    memo      text        NOT NULL,
    pool_id   text        NOT NULL REFERENCES dex.pools (id),
    kind      text        NOT NULL,
    reason    text        NOT NULL,
    failed_at timestamptz NOT NULL
);

-- The sweeper reads recently finished orders to push final statuses nobody pushed.
CREATE INDEX orders_finished ON orders (updated_at) WHERE status IN ('confirmed', 'failed', 'cancelled', 'expired');
