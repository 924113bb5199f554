"""Service building blocks."""
