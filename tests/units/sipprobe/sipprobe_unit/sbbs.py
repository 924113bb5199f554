"""
SBBs for the SIP RA tests.

MessageSbb does what a MESSAGE body says: C{ok} (200), C{fail} (raise:
the RA answers 500), C{later} (answer 202 from a timer, by the transaction
id kept in a CMP field), C{send <uri>} (send a MESSAGE to C{uri}, answer the
incoming one with the final status that comes back).

SubscriptionSbb serves the event package C{test}: a SUBSCRIBE makes a
dialog, is answered 200 and followed by a NOTIFY; a refresh with
C{Expires: 0} sends a terminating NOTIFY and ends the dialog.  Other packages
are not initial: the RA answers them 489.
"""

from slee.events import SERVICE_STARTED, TIMER
from slee.sbb import CmpField, Sbb, Select, handler

from resource_adaptors.sip.events import (
    REQUEST, RESPONSE_2XX, RESPONSE_4XX, TRANSACTION_TIMEOUT)

from sipprobe_unit import JOURNAL


class MessageSbb(Sbb):
    pending = CmpField()
    incoming = CmpField()

    @handler(REQUEST["MESSAGE"], initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_message(self, event, aci):
        sip = self.context.resource_adaptor("sip")
        command = event.request.body.decode()
        JOURNAL.append(("message", command))
        if command == "ok":
            sip.respond(event, 200)
        elif command == "fail":
            raise RuntimeError("told to fail")
        elif command == "later":
            self.pending = event.transaction
            self.context.timers.set_timer(aci, 0.05)
            return
        elif command.startswith("send "):
            target = command.split(" ", 1)[1]
            request = sip.new_request("MESSAGE", target, "sip:probe@127.0.0.1", target,
                                      body=b"ok", content_type="text/plain")
            client = sip.send_request(request)
            client.attach(self.context.sbb_local_object)
            self.incoming = event.transaction
            return
        aci.detach(self.context.sbb_local_object)

    @handler(TIMER)
    def on_timer(self, event, aci):
        self.context.resource_adaptor("sip").respond(self.pending, 202)
        aci.detach(self.context.sbb_local_object)

    @handler(RESPONSE_2XX)
    def on_success(self, event, aci):
        self._relay(event.response.status, aci)

    @handler(RESPONSE_4XX)
    def on_failure(self, event, aci):
        self._relay(event.response.status, aci)

    @handler(TRANSACTION_TIMEOUT)
    def on_timeout(self, event, aci):
        self._relay(408, aci)

    def _relay(self, status, aci):
        JOURNAL.append(("relayed", status))
        self.context.resource_adaptor("sip").respond(self.incoming, status)
        for activity in self.context.activities():
            activity.detach(self.context.sbb_local_object)


class SubscriptionSbb(Sbb):
    notified = CmpField(default=0)
    ending = CmpField(default=False)
    notifying = CmpField()

    @handler(SERVICE_STARTED, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_started(self, event, aci):
        self.context.resource_adaptor("sip").register_capabilities(
            event_packages=["test"], accept=["text/plain"])
        aci.detach(self.context.sbb_local_object)

    def only_test_package(self, event_type, event, aci, address):
        """Initial: a SUBSCRIBE outside any dialog for the package "test"."""
        package = event.request.event
        if event.dialog is None and package is not None and package.package == "test":
            return ""
        return None

    @handler(REQUEST["SUBSCRIBE"], initial=True, select=(Select.ACTIVITY_CONTEXT,),
             selector="only_test_package")
    def on_subscribe(self, event, aci):
        sip = self.context.resource_adaptor("sip")
        if event.dialog is None:
            dialog = sip.create_dialog(event)
            dialog.attach(self.context.sbb_local_object)
            aci.detach(self.context.sbb_local_object)
        else:
            dialog = aci
        expires = event.request.expires
        sip.respond(event, 200, headers=[("Expires", str(expires if expires is not None else 60))],
                    dialog=dialog)
        state = "terminated;reason=timeout" if expires == 0 else "active;expires=60"
        self.notifying = sip.send_in_dialog(
            dialog, "NOTIFY", headers=[("Event", "test"), ("Subscription-State", state)],
            body=f"notify {self.notified}".encode(), content_type="text/plain")
        self.notified += 1
        self.ending = expires == 0
        JOURNAL.append(("subscribe", expires))
        JOURNAL.append(("awaits an answer", sip.awaits_answers(dialog)))

    @handler(RESPONSE_2XX)
    def on_notify_answered(self, event, aci):
        """The NOTIFY's answer, on the dialog's activity: after the final one, the dialog ends."""
        JOURNAL.append(("notify answered", event.response.status))
        JOURNAL.append(("answered on its dialog", event.transaction == self.notifying
                        and aci.key.endswith(event.dialog)))
        JOURNAL.append(("awaits an answer",
                        self.context.resource_adaptor("sip").awaits_answers(aci)))
        if self.ending:
            self.context.resource_adaptor("sip").end_dialog(aci)
            aci.detach(self.context.sbb_local_object)
