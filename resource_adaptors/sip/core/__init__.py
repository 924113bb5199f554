"""
The sans-IO SIP core: what SIP is, apart from sockets and clocks.

URIs (L{uri}), the grammar's pieces (L{syntax}), typed header values
(L{headers}), messages (L{message}), bytes to messages (L{parser}), the
transaction state machines (L{transaction}), which transaction a message
belongs to (L{matching}), dialogs (L{dialog}), the
RFC 3261 §18 rules on where messages go and how a received request's Via
is stamped (L{routing}) and the listening descriptions (L{listen}).

Nothing here imports Twisted or slee (a test holds it to that): the core is
driven by the shell around it (L{resource_adaptors.sip.transports} and
L{resource_adaptors.sip.transaction_layer}), which does the I/O, keeps the
time and logs, so that the core can be tested, and reused, with neither.
"""
