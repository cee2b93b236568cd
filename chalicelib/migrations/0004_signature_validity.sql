-- Until when the venues accept the order's signed swap (a Solana transaction's recent blockhash expires).
ALTER TABLE orders ADD COLUMN valid_until timestamptz;
