"""The order engine: everything the Lambda functions import.

Layout: ``domain`` is the pure core (tokens, pool math, routing, order rules) with no I/O;
``adapters`` talk to PostgreSQL, Redis, SQS, the venues and the WebSocket API; ``services`` are the
use cases the handlers call; ``bootstrap`` wires them together from the environment.
"""
