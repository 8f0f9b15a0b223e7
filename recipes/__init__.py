"""Bundled launch recipes (TOML), installed as ``pytest_gx10.recipes``: ``--gx10-launch=NAME`` finds them."""
