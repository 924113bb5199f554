"""
Quotas: how many publications and subscriptions the event engine keeps,
so that a flood of PUBLISHes or SUBSCRIBEs (for new presentities, from
new dialogs) meets a refusal instead of growing the database and the
memory without end.

Four limits, environment entries of every SBB that makes publications
(the L{sbbs.sipevent.publisher.PublisherSbb} of each package, the
publication client) or subscriptions (the L{sbbs.sipevent.notifier.NotifierSbb}
of each package, the resource list server's among them), set together by
the C{twistd slee} options of L{sbbs.sipevent.command_line}:

- C{max-publications-per-resource}: live publications of one resource for
  one package.  The resource is the user: only it (or an administrator)
  publishes its state, and its publications are one stored value, whose
  length is the count;
- C{max-publications}: live publications in total, every package;
- C{max-subscriptions-per-watcher}: subscriptions one subscriber (its
  address of record, as authenticated) holds, every package, SIP and a
  service's alike (the resource list server's back-end subscriptions are
  the list watcher's);
- C{max-subscriptions}: subscriptions in total, every notifier, SIP and
  internal, those waiting for their package's decision included.

Only what would make one more counts: a new publication (not a refresh,
a modify or a removal) and a new subscription (not a refresh or an
unsubscribe).  Past a per-user limit the answer is 403, past a total 503
with Retry-After, each with a reason phrase naming the quota; a service
hears the same status.  A warning is logged, at most once a minute.

The counts live in shared data, changed in the transaction that changes
what they count: a roll-back takes them back, a restart finds them.  The
totals are C{BTrees.Length} objects, whose concurrent changes merge
instead of conflicting; each watcher's count is an entry of L{WATCHERS},
gone at zero.
"""

from weakref import WeakKeyDictionary

from BTrees.Length import Length

from slee.log_limits import RateLimitedWarning
from sbbs.sipevent.subscription import Refusal
from slee.resources import Property

#: The shared data of the totals: L{PUBLICATIONS} and L{SUBSCRIPTIONS}
#: -> a C{BTrees.Length}.
TOTALS = "slee.sipevent.quotas"
PUBLICATIONS = "publications"
SUBSCRIPTIONS = "subscriptions"

#: The shared data of the watchers' counts: subscriber -> its subscriptions.
WATCHERS = "slee.sipevent.watchers"

#: The Retry-After of a 503 past a total, in seconds: room comes back as
#: publications and subscriptions expire (an hour by default), so retrying
#: sooner than a few minutes only adds to the load.
RETRY_AFTER = 300

#: The largest value a limit may be set to.
HIGHEST = 10 ** 9


def check_limit(value):
    """A L{Property} check: a count from 1 to L{HIGHEST}."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= HIGHEST:
        return f"must be an integer from 1 to {HIGHEST}, not {value!r}"
    return None


# The defaults are sized in the README (section "The presence server").
PUBLICATION_ENVIRONMENT = {
    "max-publications": Property(int, 100000, check_limit),
    "max-publications-per-resource": Property(int, 32, check_limit),
}
SUBSCRIPTION_ENVIRONMENT = {
    "max-subscriptions": Property(int, 100000, check_limit),
    "max-subscriptions-per-watcher": Property(int, 5000, check_limit),
}


# -- publications ---------------------------------------------------------------


def publication_refusal(context, held):
    """
    @param context: the SBB context of a publisher (with the
        L{PUBLICATION_ENVIRONMENT}).
    @param held: the live publications of the resource for the package.
    @return: the L{Refusal} of one more publication, or None.
    """
    return _refusal(context, held, "max-publications-per-resource", PUBLICATIONS,
                    "max-publications")


def count_publications(context, change):
    """C{change} publications more (or fewer) are live."""
    if change:
        _total(context, PUBLICATIONS).change(change)


# -- subscriptions --------------------------------------------------------------


def subscription_refusal(context, watcher):
    """
    @param context: the SBB context of a notifier (with the
        L{SUBSCRIPTION_ENVIRONMENT}).
    @return: the L{Refusal} of one more subscription of C{watcher}, or None.
    """
    return _refusal(context, context.shared_data(WATCHERS).get(watcher, 0),
                    "max-subscriptions-per-watcher", SUBSCRIPTIONS, "max-subscriptions")


def take_subscription(context, watcher):
    """Count one more subscription of C{watcher}."""
    _total(context, SUBSCRIPTIONS).change(1)
    watchers = context.shared_data(WATCHERS)
    watchers[watcher] = watchers.get(watcher, 0) + 1


def release_subscription(context, watcher):
    """Count one subscription of C{watcher} fewer."""
    _total(context, SUBSCRIPTIONS).change(-1)
    watchers = context.shared_data(WATCHERS)
    held = watchers.get(watcher, 0) - 1
    if held > 0:
        watchers[watcher] = held
    else:
        watchers.pop(watcher, None)


# -- the counts and the refusals ------------------------------------------------------


def _total(context, name):
    """The C{Length} of the total C{name}, made on first use."""
    counts = context.shared_data(TOTALS)
    total = counts.get(name)
    if total is None:
        total = counts[name] = Length(0)
    return total


#: What the reason phrase of a refusal calls each quota.
NAMES = {
    "max-publications-per-resource": "publications per resource",
    "max-publications": "publications in total",
    "max-subscriptions-per-watcher": "subscriptions per watcher",
    "max-subscriptions": "subscriptions in total",
}


def _refusal(context, held, per_user, total, per_total):
    """
    The refusal of one more of what a user holds C{held} of: 403 past its
    limit C{per_user}, 503 past the limit C{per_total} of the total
    C{total} (environment entries), else None.
    """
    env = context.env
    if held >= env[per_user]:
        return _refused(context, 403, per_user)
    if _total(context, total)() >= env[per_total]:
        return _refused(context, 503, per_total)
    return None


#: The container clock -> its warning: one a minute however many refusals.
_warnings = WeakKeyDictionary()


def _refused(context, status, quota):
    """A C{status} past the quota C{quota} (its entry), logged at most once a minute."""
    clock = context.timers.clock
    warning = _warnings.get(clock)
    if warning is None:
        warning = _warnings[clock] = RateLimitedWarning(clock)
    warning(context.tracer, "quota {quota} = {limit} reached: new ones get {status}",
            quota=quota, limit=context.env[quota], status=status)
    headers = (("Retry-After", str(RETRY_AFTER)),) if status == 503 else ()
    return Refusal(status, f"Quota exceeded: {NAMES[quota]}", headers)
