"""A resource adaptor the tests drive directly, and that keeps its endpoint."""

from slee.resources import ResourceAdaptor

from model_unit import DO


class ModelAdaptor(ResourceAdaptor):
    event_types = (DO,)
    instance = None

    def activate(self, endpoint):
        super().activate(endpoint)
        ModelAdaptor.instance = self

    def get_activity(self, handle):
        return handle

    def start(self, handle):
        self.endpoint.start_activity(handle)

    def do(self, handle, command, **arguments):
        self.endpoint.fire_event(handle, DO, dict(arguments, op=command))
