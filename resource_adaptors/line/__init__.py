"""
A line-protocol resource adaptor: each TCP connection is an activity, each
received line an event.

It is small on purpose: it exercises the whole resource adaptor API (the
tests and examples use it), and it is handy for scripting a service by
hand with C{nc}.
"""

from resource_adaptors.line.adaptor import (
    CONNECTION_OPENED, LINE_RECEIVED, ConnectionOpened, LineReceived, LineResourceAdaptor)

__all__ = ["CONNECTION_OPENED", "LINE_RECEIVED", "ConnectionOpened", "LineReceived",
           "LineResourceAdaptor"]
