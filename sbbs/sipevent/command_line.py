"""
The quotas' C{twistd slee} options (config file keys of the same names,
L{sbbs.sipevent.quotas}): C{--max-publications N},
C{--max-publications-per-resource N}, C{--max-subscriptions N} and
C{--max-subscriptions-per-watcher N}.  Each sets the environment entry of
its name on every SBB of the shipped units that enforces it, so that all
of them count against the same limit: the publishers of the packages and
the publication client, or the notifiers (a publisher or notifier SBB
of another name, in a unit of one's own, keeps the defaults unless its
unit sets them).  Each value is checked here,
and again by the SBBs' environments when their units are deployed.
"""

from sbbs.sipevent.quotas import (
    HIGHEST, PUBLICATION_ENVIRONMENT, SUBSCRIPTION_ENVIRONMENT, check_limit)
from slee.resources import RaOption, sbb_env_target

#: The shipped SBBs that make publications, and those that make subscriptions.
PUBLISHERS = ("CompositorSbb", "PublicationClientSbb")
NOTIFIERS = ("PresenceNotifierSbb", "WinfoNotifierSbb", "ResourceListNotifierSbb",
             "XcapDiffNotifierSbb")


def _limit(value):
    """A limit as the command line (a string) or the config file (an integer) gives it."""
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if check_limit(number):
        raise ValueError(f"expected a number from 1 to {HIGHEST}, not {value!r}")
    return number


def _option(entry, sbbs, environment, doc):
    return RaOption(entry, tuple(sbb_env_target(sbb) for sbb in sbbs), entry, check=_limit,
                    metavar="N", doc=f"{doc} [default: {environment[entry].default}]")


MAX_PUBLICATIONS_OPTION = _option(
    "max-publications", PUBLISHERS, PUBLICATION_ENVIRONMENT,
    "N: the most live publications in all; a new one past it gets 503 with Retry-After.")
MAX_PUBLICATIONS_PER_RESOURCE_OPTION = _option(
    "max-publications-per-resource", PUBLISHERS, PUBLICATION_ENVIRONMENT,
    "N: the most live publications of one resource (a presentity) for one event package; "
    "a new one past it gets 403.")
MAX_SUBSCRIPTIONS_OPTION = _option(
    "max-subscriptions", NOTIFIERS, SUBSCRIPTION_ENVIRONMENT,
    "N: the most subscriptions in all (every event package, SIP and services'); a new one "
    "past it gets 503 with Retry-After.")
MAX_SUBSCRIPTIONS_PER_WATCHER_OPTION = _option(
    "max-subscriptions-per-watcher", NOTIFIERS, SUBSCRIPTION_ENVIRONMENT,
    "N: the most subscriptions of one watcher (its address of record; every event package, "
    "a resource list's back-end subscriptions included); a new one past it gets 403.")
