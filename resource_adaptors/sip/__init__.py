"""
SIP for slee: a sans-IO SIP core (messages, URIs, transactions, dialogs),
Twisted transports (UDP, TCP, TLS, WebSocket) and the SIP resource adaptor.
"""
