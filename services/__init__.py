"""I/O side of leadledger: processes, adapters, HTTP API, metrics, CLI and the embedded stack."""
