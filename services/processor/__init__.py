"""The stream processor: a Faust worker that folds lead events into the Postgres read models."""
