"""Closed loop, pure: email keys, suppression of re-handoffs, duplicates, merged histories and
sales feedback. No I/O; keys and time come in as arguments."""
