-- A trader's own id for an order (issue 20): unique among that user's orders, and how the user may read or cancel it.
ALTER TABLE orders ADD COLUMN client_order_id text;
CREATE UNIQUE INDEX orders_client_order_id ON orders (user_id, client_order_id) WHERE client_order_id IS NOT NULL;
