"""
The deployable units that ship with slee, one directory each.  A bare
C{twistd -n slee} deploys them (see L{slee.settings.shipped_units}).
"""
