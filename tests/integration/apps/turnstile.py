"""Shared by the test and every environment of ``two_functions_app.py`` (each environment imports the app afresh,
but this module once): REST requests wait at the turnstile; WebSocket messages are recorded."""

import threading

rest_may_answer = threading.Event()
messages: list[str] = []
message_arrived = threading.Event()
