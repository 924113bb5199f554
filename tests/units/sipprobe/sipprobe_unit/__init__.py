"""SBBs that use the SIP RA's provider the way the tests script them."""

from twisted.internet import defer


class Journal(list):
    """What the SBBs saw, outside any transaction; tests can wait for an entry."""

    def __init__(self):
        super().__init__()
        self.waiters = []

    def append(self, entry):
        super().append(entry)
        for wanted, d in list(self.waiters):
            if wanted == entry:
                self.waiters.remove((wanted, d))
                d.callback(entry)

    def wait_for(self, entry, count=1):
        """@return: a Deferred firing once C{entry} was appended C{count} times."""
        if self.count(entry) >= count:
            return defer.succeed(entry)
        d = defer.Deferred()
        self.waiters.append((entry, d))
        return d.addCallback(lambda _: self.wait_for(entry, count))

    def clear(self):
        super().clear()
        self.waiters.clear()


JOURNAL = Journal()
