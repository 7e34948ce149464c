"""The leadledger event contract: envelope, catalog, codec, registry and funnel config. No I/O."""
