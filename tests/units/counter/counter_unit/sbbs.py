"""
The counter service: every line received on any connection goes to one
root SBB entity (a singleton root SBB).

The entity creates a null activity when it is created, attaches to it and
binds it to the name C{counter}: that keeps the entity alive when the
connection that created it closes, and gives the timers an activity that
survives a restart (connections do not).

Answers are sent with the line RA's C{send}, which acts only after the
transaction commits: an acknowledged C{incr} is a committed one.
"""

from slee.events import TIMER
from slee.sbb import CmpField, Sbb, handler

from counter_unit.line import LINE_RECEIVED

NAME = "counter"


class Counter(Sbb):
    singleton = True
    count = CmpField(default=0)
    fired = CmpField(default=0)
    home = CmpField()  # the null activity bound to NAME
    notes = CmpField(default_factory=list)     # stored frozen: see the README

    def sbb_post_create(self):
        context = self.context
        null = context.create_null_activity()
        null.attach(context.sbb_local_object)
        context.naming.bind(null, NAME)
        self.home = null

    def answer(self, aci, line):
        self.context.resource_adaptor("line").send(aci, line)

    @handler(LINE_RECEIVED, initial=True)
    def on_line(self, event, aci):
        command, _, argument = event.line.strip().partition(" ")
        if command == "incr":
            self.count += 1
            self.answer(aci, f"ok {self.count}")
        elif command == "get":
            self.answer(aci, f"count {self.count}")
        elif command == "timer":
            try:
                delay = float(argument)
            except ValueError:
                delay = -1.0
            if not delay >= 0:
                self.answer(aci, "error timer takes a number of seconds")
                return
            self.context.timers.set_timer(self.home, delay)
            self.answer(aci, "timer set")
        elif command == "fired":
            self.answer(aci, f"fired {self.fired}")
        elif command == "note":
            self.notes += [argument]
            self.answer(aci, f"noted {len(self.notes)}")
        elif command == "note-in-place":
            self.notes.append(argument)     # refused (a TypeError): rolled back, no answer
        elif command == "notes":
            self.answer(aci, " ".join(("notes",) + self.notes))
        elif command == "fail":
            self.count += 1
            raise RuntimeError("told to fail")
        else:
            self.answer(aci, "error unknown command")

    @handler(TIMER)
    def on_timer(self, event, aci):
        self.fired += 1
