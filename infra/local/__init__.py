"""The local cloud: PostgreSQL, a Redis-compatible server, an AWS emulator, an API Gateway (REST, WebSocket and
``@connections``) and the SQS event source mapping, all on 127.0.0.1 without Docker. Never deployed."""
