-- The slot of the swap that last changed each pool (issue 20's market stream: a follower keeps the highest it saw).
ALTER TABLE dex.pools ADD COLUMN slot bigint NOT NULL DEFAULT 0;
