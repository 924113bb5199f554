"""
SBBs that do what the event (a dict) says, so that each test scripts the
behaviour it checks.  Every delivery is written to JOURNAL.
"""

import gc

from zope.interface import Interface, implementer

from slee.events import ACTIVITY_END, SERVICE_STARTED, TIMER
from slee.resources import Property
from slee.sbb import ChildRelation, CmpField, Sbb, Select, handler

from probe_unit import JOURNAL, OBJECTS, PING, POKE


class IChild(Interface):
    def hello(text):
        """Remember C{text}; return it upper-cased."""

    def fail():
        """Raise."""


@implementer(IChild)
class Child(Sbb):
    local_interface = IChild
    greeting = CmpField()

    def sbb_create(self):
        OBJECTS.append(("sbb_create", self))

    def hello(self, text):
        OBJECTS.append(("hello", self))
        self.greeting = text
        return text.upper()

    def fail(self):
        raise RuntimeError("child failed")

    @handler(PING)
    def on_ping(self, event, aci):
        JOURNAL.append(("child", event.get("op")))

    def sbb_remove(self):
        OBJECTS.append(("sbb_remove", self))
        JOURNAL.append(("child", "removed"))


class Root(Sbb):
    environment = {"greeting": Property(str, "hello", lambda v: None if v else "empty")}
    count = CmpField(default=0)
    seen = CmpField(default_factory=list)
    peer = CmpField()
    kids = ChildRelation(Child, priority=-5)

    def selector(self, event_type, event, aci, address):
        if event.get("op") == "not-initial":
            return None
        return event.get("group", "")

    @handler(PING, initial=True, select=(Select.ACTIVITY_CONTEXT,), selector="selector")
    def on_ping(self, event, aci):
        JOURNAL.append(("root", event.get("op")))
        self.count += 1
        self.seen = self.seen + [event.get("op")]
        op = event.get("op")
        ctx = self.context
        if op == "fail":
            raise RuntimeError("told to fail")
        elif op == "rollback":
            ctx.set_rollback_only()
        elif op == "send":
            ctx.resource_adaptor("probe").send(event["message"])
        elif op == "send-then-fail":
            ctx.resource_adaptor("probe").send(event["message"])
            raise RuntimeError("failing after send")
        elif op == "count service data":
            data = ctx.service_data
            data["count"] = data.get("count", 0) + 1
            JOURNAL.append(("service data", data["count"]))
        elif op == "env":
            JOURNAL.append(("env", dict(ctx.env)))
        elif op == "count shared data":
            count_shared_data(ctx)
        elif op == "fire":
            ctx.fire_event(aci, POKE, {"op": "poked"})
        elif op == "fire-then-fail":
            ctx.fire_event(aci, POKE, {"op": "poked"})
            raise RuntimeError("failing after fire")
        elif op == "child":
            child = self.kids.create()
            self.peer = child
            JOURNAL.append(("root", "child said " + child.hello(event["text"])))
        elif op == "child-fail":
            child = self.kids.create()
            child.fail()
        elif op == "remove-children":
            self.kids.clear()
        elif op in ("detach", "leave"):
            aci.detach(ctx.sbb_local_object)
        elif op == "attach-child":
            aci.attach(self.peer)
        elif op == "mask":
            ctx.mask_event(aci, [POKE])
        elif op == "timer":
            ctx.timers.set_timer(aci, event["delay"], event.get("period"),
                                 event.get("repetitions"))
        elif op == "timer-then-fail":
            ctx.timers.set_timer(aci, event["delay"])
            raise RuntimeError("failing after timer")
        elif op == "null":
            null = ctx.create_null_activity()
            null.attach(ctx.sbb_local_object)
            ctx.naming.bind(null, event["name"])
            if "delay" in event:
                ctx.timers.set_timer(null, event["delay"])
        elif op == "lookup":
            found = ctx.naming.lookup(event["name"])
            ctx.resource_adaptor("probe").send(None if found is None else found.key)
        elif op == "unbind":
            null = ctx.naming.lookup(event["name"])
            ctx.naming.unbind(event["name"])
            null.detach(ctx.sbb_local_object)
        elif op == "usage":
            ctx.usage.increment("pings")
            ctx.usage.sample("size", event["size"])
        elif op == "alarm":
            ctx.alarms.raise_alarm("overload", "queue", "major", "too much")
        elif op == "clear-alarm":
            ctx.alarms.clear_alarm("overload", "queue")
        elif op == "trace":
            ctx.tracer.debug("debug line {n}", n=event["n"])
            ctx.tracer.info("info line {n}", n=event["n"])
        elif op == "end-null":
            ctx.naming.lookup(event["name"]).activity.end_activity()
        elif op == "collector":
            ctx.resource_adaptor("probe").send(gc.isenabled())

    @handler(POKE)
    def on_poke(self, event, aci):
        JOURNAL.append(("root", event.get("op")))

    @handler(TIMER)
    def on_timer(self, event, aci):
        JOURNAL.append(("root", "timer fired"))
        self.count += 1

    @handler(ACTIVITY_END)
    def on_end(self, event, aci):
        JOURNAL.append(("root", "end"))

    def sbb_exception_thrown(self, exception, event, aci):
        JOURNAL.append(("root", f"exception {exception}"))

    def sbb_rolled_back(self, event, aci):
        JOURNAL.append(("root", f"rolled back {event.get('op')}"))

    def sbb_remove(self):
        JOURNAL.append(("root", "removed"))


def count_shared_data(context):
    data = context.shared_data("probe.shared")
    data["count"] = data.get("count", 0) + 1
    JOURNAL.append(("shared data", data["count"]))


class High(Sbb):
    started = CmpField(default=0)

    @handler(PING, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_ping(self, event, aci):
        JOURNAL.append(("high", event.get("op")))
        if event.get("op") == "count shared data":
            count_shared_data(self.context)
        if event.get("op") == "leave":      # every entity detaches
            aci.detach(self.context.sbb_local_object)

    @handler(SERVICE_STARTED, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_started(self, event, aci):
        JOURNAL.append(("high", "service started"))
        aci.detach(self.context.sbb_local_object)
