-- Limit orders triggered and not yet submitted, by pair: a trigger evaluation replays their swaps first, since the
-- liquidity they will take is no longer there for the next order.
CREATE INDEX orders_claiming ON orders (token_in, token_out)
    WHERE type = 'limit' AND status IN ('triggered', 'routing', 'building');
