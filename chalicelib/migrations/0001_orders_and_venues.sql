-- The engine's order tables.
CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    user_id         text        NOT NULL,
    type            text        NOT NULL,
    token_in        text        NOT NULL,
    token_out       text        NOT NULL,
    amount_in       numeric(40) NOT NULL CHECK (amount_in > 0),
    slippage_bps    integer     NOT NULL CHECK (slippage_bps BETWEEN 1 AND 5000),
    status          text        NOT NULL,
    seq             integer     NOT NULL,
    venue           text,
    pool_id         text,
    min_out         numeric(40),
    tx_signature    text UNIQUE,
    amount_out      numeric(40),
    failure_reason  text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (updated_at) WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired');

CREATE TABLE order_events (
    order_id  uuid        NOT NULL REFERENCES orders (id),
    seq       integer     NOT NULL,
    status    text        NOT NULL,
    at        timestamptz NOT NULL,
    data      jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE routing_decisions (
    order_id    uuid        PRIMARY KEY REFERENCES orders (id),
    chosen      text        NOT NULL,
    reason      text        NOT NULL,
    quotes      jsonb       NOT NULL,
    decided_at  timestamptz NOT NULL
);

-- The mock venues' own state, kept apart from the engine like a chain is: pools and the ledger of
-- executed swaps, keyed by transaction signature so a venue can say what it did with one.
CREATE SCHEMA dex;

CREATE TABLE dex.pools (
    id          text        PRIMARY KEY,
    venue       text        NOT NULL,
    base        text        NOT NULL,
    quote       text        NOT NULL,
    state       jsonb       NOT NULL,
    swaps       bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE dex.swaps (
    signature   text        PRIMARY KEY,
    memo        text        NOT NULL,
    pool_id     text        NOT NULL REFERENCES dex.pools (id),
    venue       text        NOT NULL,
    token_in    text        NOT NULL,
    token_out   text        NOT NULL,
    amount_in   numeric(40) NOT NULL,
    amount_out  numeric(40) NOT NULL,
    fee         numeric(40) NOT NULL,
    slot        bigint      NOT NULL,
    executed_at timestamptz NOT NULL
);
CREATE INDEX swaps_by_memo ON dex.swaps (memo);
CREATE SEQUENCE dex.slots;
