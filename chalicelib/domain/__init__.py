"""Pure domain core: no I/O, no clocks, no randomness."""
