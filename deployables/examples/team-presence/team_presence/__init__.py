"""The example service of docs/writing-services.md: team presence (see deployable.toml)."""
