"""
A resource adaptor the tests drive directly: they start activities and
fire events through it, and read what SBBs sent through it.
"""

from slee.resources import ResourceAdaptor

from probe_unit import PING, POKE


class ProbeAdaptor(ResourceAdaptor):
    event_types = (PING, POKE)
    instance = None

    def __init__(self):
        super().__init__()
        self.sent = []
        self.stopped = False

    def activate(self, endpoint):
        super().activate(endpoint)
        ProbeAdaptor.instance = self

    def stop(self):
        self.stopped = True

    def get_activity(self, handle):
        return f"probe activity {handle}"

    # What the tests call.

    def start(self, handle, durable=False):
        self.endpoint.start_activity(handle, durable)

    def fire(self, handle, command, event_type=PING, address=None):
        self.endpoint.fire_event(handle, event_type, command, address)

    def end(self, handle):
        self.endpoint.end_activity(handle)

    # The SBB interface.

    def send(self, message):
        self.endpoint.after_commit(lambda: self.sent.append(message))
