"""Adapters: the only modules that talk to PostgreSQL, Redis, SQS, the venues and the WebSocket API."""
