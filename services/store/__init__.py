"""PostgreSQL adapters: migrations, the processor's batch store and the API's lead reader."""
