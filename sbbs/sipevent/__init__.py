"""
The SIP event engine: subscriptions (RFC 6665) written once for every
event package (L{sbbs.sipevent.notifier}), their sans-IO state
(L{sbbs.sipevent.subscription}).
"""
