-- Limit orders (issue 17): the trader's terms, kept with the order. A limit order has no slippage (its limit is the
-- protection), so slippage_bps may be empty; its CHECK still holds for every order that has one.
ALTER TABLE orders
    ALTER COLUMN slippage_bps DROP NOT NULL,
    ADD COLUMN time_in_force   text,
    ADD COLUMN side            text,
    ADD COLUMN limit_price     numeric,
    ADD COLUMN min_amount_out  numeric(40),
    ADD COLUMN expires_at      timestamptz,
    -- The price in price-then-time priority, one order for both sides: the limit price for a seller, its negation
    -- for a buyer, so that the best price sorts first either way.
    ADD COLUMN trigger_key     numeric,
    -- What the swap sells when an IOC order fills only part of amount_in at its limit.
    ADD COLUMN fill_amount_in  numeric(40);

-- Resting orders by the pair they trade, in priority: a pool event reads only the orders its new price may satisfy,
-- never every open order.
CREATE INDEX orders_resting ON orders (token_in, token_out, trigger_key, created_at) WHERE status = 'open';
-- What expires next, for the expiry timers and the backstop.
CREATE INDEX orders_expiring ON orders (expires_at)
    WHERE expires_at IS NOT NULL AND status NOT IN ('confirmed', 'failed', 'cancelled', 'expired');
