"""
The exceptions the container raises.  Each carries a one-line message
meant for a human: a log line, an HTTP answer or a CLI error.
"""


class SleeError(Exception):
    """Base of every error the container raises on purpose."""


class ConfigurationError(SleeError):
    """A setting or an RA entity property has a bad value."""


class DeploymentError(SleeError):
    """A deployable unit is invalid; the message names the file and field."""


class ManagementError(SleeError):
    """A management operation got a bad argument or cannot be done now."""


class TransactionRequiredError(SleeError):
    """A transactional operation was called outside an event delivery."""


class OverloadError(SleeError):
    """The event queue is full: a resource adaptor must refuse the work."""


class UnknownActivityError(SleeError):
    """An event was fired on an activity that was never started or ended."""


class NoSuchEntityError(SleeError):
    """An SBB local object names an entity that has been removed."""


class NameAlreadyBoundError(SleeError):
    """An activity context name is bound already."""


class NameNotBoundError(SleeError):
    """An activity context name is not bound."""
