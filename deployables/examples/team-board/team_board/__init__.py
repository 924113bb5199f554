"""An example service: a team board on a resource list (see deployable.toml)."""
