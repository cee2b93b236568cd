"""Use cases: what the handlers ask for, written against the small interfaces in ``ports``."""
