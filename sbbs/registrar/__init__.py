"""
The registrar (RFC 3261 §10, RFC 3327 Path) and the location client other
services find registered users with: L{sbbs.registrar.bindings} (the
rules, sans I/O), L{sbbs.registrar.location} (where the bindings are
kept), L{sbbs.registrar.registrar} (the SBB) and
L{sbbs.registrar.location_client}.
"""
