"""
What the presence server derives from documents, made once: the parsed
PIDF of a publication, the ruleset of a pres-rules document, the sphere of
a composed document, the document a watcher is sent under a decision, and
the neutral document of an offline presentity.

Each is a pure function of immutable values (document bytes, an immutable
ruleset or decision), and each is asked for far more often than its inputs
change: a change that reaches 10,000 watchers under one rule is
transformed once.  They share one least-recently-used memo, bounded in
entries, so that the memory they take is one figure to reason about
(L{MEMO}, L{SIZE} entries) rather than one per cache; it lives as long as
the process, like the documents it is keyed by, and never holds anything
that a transaction must see change (its values are derived, never state).
"""

from collections import OrderedDict

#: The most values the memo keeps.
SIZE = 8192


class Memo:
    """
    A bounded least-recently-used memo of derived values, keyed by what
    derives them and its argument.
    """

    def __init__(self, size=SIZE):
        self.size = size
        self._values = OrderedDict()

    def __len__(self):
        return len(self._values)

    def get(self, derive, argument):
        """
        @return: C{derive(argument)}, made once while it stays among the
            L{size} values asked for last.  What raises is not remembered.
        """
        key = (derive, argument)
        values = self._values
        try:
            values.move_to_end(key)
            return values[key]
        except KeyError:
            pass
        value = derive(argument)
        values[key] = value
        if len(values) > self.size:
            values.popitem(last=False)
        return value

    def clear(self):
        self._values.clear()


#: The presence server's memo.
MEMO = Memo()
