"""
What the resource list server's live tests share: a container with the
integrated profile's units (presence server on policy C{allow} unless
told otherwise) on free ports, a plain HTTP client of its XDMS, and SIP
peers that publish, or subscribe to lists and read the RLMI + multipart
NOTIFYs they get.
"""

import uuid

from sipclient import UdpPeer, options, reply
from sbbs.rls.rlmi import parse_multipart, parse_rlmi
from slee.settings import shipped_units
from units import LOCAL_RAS, sip_port_of, started_container, xcap_port_of
from xcapclient import Xdms

RL = "urn:ietf:params:xml:ns:resource-lists"
RLS = "urn:ietf:params:xml:ns:rls-services"
RL_TYPE = "application/resource-lists+xml"
RLS_TYPE = "application/rls-services+xml"
PIDF_TYPE = "application/pidf+xml"
LIST_HEADERS = ("Event: presence\r\nSupported: eventlist\r\n"
                "Accept: application/pidf+xml, application/rlmi+xml, multipart/related\r\n")


def pidf(entity, basic="open", note="here"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
            f'<tuple id="t1"><status><basic>{basic}</basic></status></tuple>'
            f'<note>{note}</note></presence>')


def services_document(*services):
    """An rls-services document of (uri, inner XML of its <list>, packages) services."""
    body = "".join(
        f'<service uri="{uri}"><list>{inner}</list>'
        + (f'<packages>{"".join(f"<package>{p}</package>" for p in packages)}</packages>'
           if packages else "") + "</service>"
        for uri, inner, packages in services)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<rls-services xmlns="{RLS}" xmlns:rl="{RL}">{body}</rls-services>').encode()


def entries(*uris):
    return "".join(f'<rl:entry uri="{uri}"><rl:display-name>{uri.split(":")[1].split("@")[0]}'
                   f'</rl:display-name></rl:entry>' for uri in uris)


def policy_unit(tmp_path, policy):
    """A copy of the presence server's unit whose watchers get C{policy} by default."""
    import shutil
    copy = tmp_path / f"presence-server-{policy}"
    shutil.copytree(shipped_units() / "presence-server", copy)
    descriptor = copy / "deployable.toml"
    descriptor.write_text(descriptor.read_text().replace(
        'default-policy = "confirm"', f'default-policy = "{policy}"'))
    return copy


def rls_unit(tmp_path, **env):
    """
    A copy of the RLS unit with environment entries C{env} changed (TOML
    values), or added to the list server's when its descriptor leaves them
    at their defaults.
    """
    import re
    import shutil
    copy = tmp_path / f"rls-{uuid.uuid4().hex[:6]}"
    shutil.copytree(shipped_units() / "rls", copy)
    descriptor = copy / "deployable.toml"
    text = descriptor.read_text()
    for name, value in env.items():
        name = name.replace("_", "-")
        text, count = re.subn(rf"{name} = [^,}}]+", f"{name} = {value}", text)
        if count == 0:
            text, count = re.subn(r'(:ResourceListNotifierSbb"\nenv = \{ )',
                                  rf"\g<1>{name} = {value}, ", text)
        assert count == 1, name
    descriptor.write_text(text)
    return copy


class Peer:
    """A SIP user agent on its own UDP port."""

    def __init__(self, reactor, sip_port, user):
        self.udp = UdpPeer(reactor, sip_port)
        self.socket = reactor.listenUDP(0, self.udp, interface="127.0.0.1")
        self.sip_port = sip_port
        self.user = user
        self.call_id = uuid.uuid4().hex
        self.tag = "p" + uuid.uuid4().hex[:8]
        self.to_tag = None
        self.cseq = 0

    def send(self, method, target, headers="", body="", new_dialog=False):
        """Send a request; a C{bytes} body (compressed, say) goes as it is."""
        if new_dialog:
            self.call_id, self.to_tag, self.cseq = uuid.uuid4().hex, None, 0
        self.cseq += 1
        message = options(self.sip_port, method=method, headers=headers,
                          body=body if isinstance(body, str) else "",
                          call_id=self.call_id, cseq=self.cseq, local_port=self.udp.port,
                          from_uri=self.user, from_tag=self.tag, to_tag=self.to_tag,
                          uri=target)
        if isinstance(body, bytes):
            message = message.replace(b"Content-Length: 0\r\n\r\n",
                                      f"Content-Length: {len(body)}\r\n\r\n".encode()) + body
        self.udp.send(message)

    def publish(self, basic="open", note="here"):
        self.send("PUBLISH", self.user, headers=f"Event: presence\r\nExpires: 3600\r\n"
                  f"Content-Type: {PIDF_TYPE}\r\n", body=pidf(self.user, basic, note),
                  new_dialog=True)

    def subscribe(self, target, headers=LIST_HEADERS, expires=600, body="", new_dialog=True):
        self.send("SUBSCRIBE", target, headers=f"{headers}Expires: {expires}\r\n", body=body,
                  new_dialog=new_dialog)

    async def answer(self):
        """The next response (provisional ones skipped); a 2xx to SUBSCRIBE sets the dialog."""
        while True:
            response = await self.udp.next()
            if getattr(response, "status", 0) >= 200:
                break
        if response.cseq.method == "SUBSCRIBE" and response.status < 300 and not self.to_tag:
            self.to_tag = response.to.tag
        return response

    async def notify(self):
        """The next message, a NOTIFY, answered 200."""
        notify = await self.udp.next()
        assert getattr(notify, "method", None) == "NOTIFY", bytes(notify).decode()
        self.udp.send(reply(notify))
        return notify

    async def notified(self):
        """The next NOTIFY, answered 200, and its list: (notify, RlmiList or None, parts by cid)."""
        notify = await self.notify()
        if not notify.body:
            return notify, None, {}
        root, parts = parse_multipart(notify.headers.get("Content-Type"), notify.body)
        return notify, parse_rlmi(root.body), {part.content_id: part for part in parts}

    async def stop(self):
        await self.socket.stopListening()


def states(rlmi):
    """uri -> (instance id, state, reason, cid) of each resource of an RLMI list."""
    return {resource.uri: (resource.instances[0].id, resource.instances[0].state,
                           resource.instances[0].reason, resource.instances[0].cid)
            for resource in rlmi.resources}


class RlsServer:
    """A started container with the integrated units (the presence server's policy C{policy})."""

    async def start(self, tmp_path, clock, policy="allow", db=None, rls=None, units=(),
                    sip=None):
        """
        @param rls: the RLS unit to deploy (a copy: L{rls_unit}), the shipped
            one by default, or False for none.
        @param units: more units to deploy.
        @param sip: properties of the SIP RA entity over the local ones (its T1...).
        """
        from twisted.internet import reactor
        self.tmp_path, self.clock, self.reactor = tmp_path, clock, reactor
        deployed = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms")]
        deployed += [*units, policy_unit(tmp_path, policy)]
        if rls is not False:
            deployed.append(rls or shipped_units() / "rls")
        ras = {**LOCAL_RAS, "sip": {**LOCAL_RAS["sip"], **(sip or {})}}
        self.container = await started_container(tmp_path, deployed, ras, clock=clock, db=db)
        self.sip_port = sip_port_of(self.container)
        self.xdms = Xdms(self.container, xcap_port_of(self.container))
        self.peers = []
        return self

    def peer(self, user):
        peer = Peer(self.reactor, self.sip_port, user)
        self.peers.append(peer)
        return peer

    async def put(self, path, body, content_type):
        response, content = await self.xdms.request("PUT", f"/xcap-root/{path}", body,
                                                    content_type)
        assert response.code in (200, 201), (response.code, content)

    async def delete(self, path):
        response, content = await self.xdms.request("DELETE", f"/xcap-root/{path}")
        assert response.code == 200, (response.code, content)

    async def settle(self, quiet_turns=5):
        """
        Let the reactor go round until the container has had nothing to do
        for C{quiet_turns} turns in a row (what is due on the clock later
        waits): whatever a request set going is done, or waits for the
        clock.  Bounded, as every wait of the tests.
        """
        from twisted.internet import task
        from sipclient import TIMEOUT
        deadline = self.reactor.seconds() + TIMEOUT
        quiet = 0
        while quiet < quiet_turns:
            assert self.reactor.seconds() < deadline, "the container never settled"
            await task.deferLater(self.reactor, 0, lambda: None)
            quiet = quiet + 1 if len(self.container.router) == 0 else 0

    async def stop(self):
        for peer in self.peers:
            await peer.stop()
        await self.xdms.pool.closeCachedConnections()
        await self.container.stop()
