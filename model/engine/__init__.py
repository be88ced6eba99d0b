"""The video tracking engine: sessions, per-object memory banks, feature caching, clean-up.

The network's components live one level up in `model/`; this package holds the state and
scheduling that turn the network into an interactive video tracker.
"""
