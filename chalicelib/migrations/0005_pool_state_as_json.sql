-- Every swap reads a pool's state and writes all of it back (a DLMM pool's bins are about 7 KB). As jsonb, PostgreSQL
-- parsed every number into numeric on each write and printed it back on each read: 615 µs of its CPU per write,
-- against 155 µs for json kept uncompressed (pglz on every rewrite cost more than the smaller row saved).
-- Nothing queries inside the state; only the venue's own code reads it.
ALTER TABLE dex.pools ALTER COLUMN state TYPE json USING state::json;
ALTER TABLE dex.pools ALTER COLUMN state SET STORAGE EXTERNAL;
