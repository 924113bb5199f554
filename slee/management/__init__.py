"""
Management of a running container: the token-protected HTTP JSON API
(L{slee.management.api}) and the admin token it is checked against
(L{slee.management.token}).  The C{slee} command line
(L{slee.management.cli}) talks to the API and prints its answers
(L{slee.management.formatting}).
"""
