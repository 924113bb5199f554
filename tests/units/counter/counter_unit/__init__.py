"""A unit for the restart tests: a single, global counter driven over the line RA."""
