"""Replay: rebuild every read model from history into a fresh schema, verify, restore."""
