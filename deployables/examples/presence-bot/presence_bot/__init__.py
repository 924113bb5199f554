"""An example service: a presence bot (see deployable.toml)."""
