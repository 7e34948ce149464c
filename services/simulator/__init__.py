"""The demo simulator: seeded lead journeys (pure) and a Kafka runner for ``up --demo``."""
