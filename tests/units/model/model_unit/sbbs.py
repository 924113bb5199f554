"""
A singleton root SBB that changes its CMP fields as each event says, the
right way (assigning) or the wrong way (in place), and one child kind.
"""

from zope.interface import Interface, implementer

from slee.sbb import ChildRelation, CmpField, Sbb, handler

from model_unit import DO, JOURNAL


class IHelper(Interface):
    def hello():
        """@return: its entity id."""


@implementer(IHelper)
class Helper(Sbb):
    local_interface = IHelper

    def hello(self):
        return self.context.sbb_local_object.entity_id


class Keeper(Sbb):
    singleton = True
    history = CmpField(default_factory=list)
    notes = CmpField(default_factory=dict)
    helpers = ChildRelation(Helper)

    @handler(DO, initial=True)
    def on_do(self, event, aci):
        getattr(self, "do_" + event["op"].replace("-", "_"))(event)

    def sbb_exception_thrown(self, exception, event, aci):
        JOURNAL.append(("failed", type(exception).__name__, str(exception)))

    def do_append(self, event):
        self.history += [event["item"]]

    def do_append_in_place(self, event):
        self.history.append(event["item"])

    def do_note(self, event):
        self.notes = {**self.notes, event["key"]: event["value"]}

    def do_note_in_place(self, event):
        self.notes[event["key"]] = event["value"]

    def do_keep_helper(self, event):
        self.notes = {**self.notes, "helper": self.helpers.get_or_create().reference}

    def do_call_helper(self, event):
        JOURNAL.append(("helper", self.context.resolve(self.notes["helper"]).hello()))

    def do_read(self, event):
        JOURNAL.append(("read", self.context.sbb_local_object.entity_id, self.history,
                        self.notes, len(self.helpers)))
