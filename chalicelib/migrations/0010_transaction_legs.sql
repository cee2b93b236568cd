-- Multi-leg transactions (issue 19): one ledger entry per transaction, with its totals and the venue and pool of its
-- first leg as before, and every leg's pool, tokens and amounts.
ALTER TABLE dex.swaps ADD COLUMN legs jsonb;
