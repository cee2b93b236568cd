-- Sniper orders and launches (issue 18).

-- The venues' token registry, as a chain's mint accounts: a token's symbol, mint and decimals never change; its mint
-- and freeze authorities may be revoked (never restored). Symbols are unique whatever their case.
CREATE TABLE dex.tokens (
    symbol                    text        PRIMARY KEY,
    mint                      text        NOT NULL UNIQUE,
    decimals                  integer     NOT NULL CHECK (decimals BETWEEN 0 AND 9),
    mint_authority_revoked    boolean     NOT NULL,
    freeze_authority_revoked  boolean     NOT NULL,
    listed_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tokens_symbol_any_case ON dex.tokens (lower(symbol));
INSERT INTO dex.tokens (symbol, mint, decimals, mint_authority_revoked, freeze_authority_revoked) VALUES
    ('SOL', 'So11111111111111111111111111111111111111112', 9, true, true),
    ('USDC', 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 6, false, false),
    ('USDT', 'Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB', 6, false, false),
    ('JUP', 'JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN', 6, true, true);

-- A sniper's terms. Its expiry is expires_at (shared with limit orders, so the expiry timers serve both); its
-- token_out is the target's mint, which a sniper knows before any venue lists the token.
ALTER TABLE orders
    ADD COLUMN max_price      numeric,
    ADD COLUMN conditions     jsonb,
    ADD COLUMN delay_seconds  integer;

-- Snipers by target, in placement order: a pool event reads those waiting for its pair (open), and a sniper's turn
-- in line depends on those placed before it that are still on their way (triggered to submitted).
CREATE INDEX orders_sniping ON orders (token_out, created_at, id)
    WHERE type = 'sniper' AND status IN ('open', 'triggered', 'routing', 'building', 'submitted');
