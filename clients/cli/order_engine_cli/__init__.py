"""``order-engine``: a terminal client of the order execution engine, on its public HTTP and WebSocket API only."""
