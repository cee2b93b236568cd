-- Smart routing (issue 19): how an order asked to be routed, the route it was built with when that has more than one
-- leg (its routes' inputs and hops; one pool stays in pool_id), and the swaps of its transaction once confirmed.
ALTER TABLE orders ADD COLUMN routing text NOT NULL DEFAULT 'smart';
ALTER TABLE orders ADD COLUMN route jsonb;
ALTER TABLE orders ADD COLUMN legs jsonb;
-- A decision's legs (each with the share of the order's input its route carries) and its gain over the best single
-- pool; decisions stored before keep none, and read back as their one venue.
ALTER TABLE routing_decisions ADD COLUMN legs jsonb;
ALTER TABLE routing_decisions ADD COLUMN gain_bps numeric;
