"""
A plain HTTP client of the XDMS for the tests, on twisted.web's Agent with a
persistent pool (closed by the test: C{await client.pool.closeCachedConnections()}).
"""

from twisted.internet import defer
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer


@implementer(IBodyProducer)
class Body:
    def __init__(self, data):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def stopProducing(self):
        pass

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass


class Xdms:
    def __init__(self, container, port):
        from twisted.internet import reactor
        self.container = container
        self.base = f"http://127.0.0.1:{port}"
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.agent = Agent(reactor, pool=self.pool)

    async def request(self, method, path, body=None, content_type=None, **headers):
        fields = Headers()
        if content_type:
            fields.addRawHeader(b"content-type", content_type.encode())
        for name, value in headers.items():
            fields.addRawHeader(name.replace("_", "-").encode(), value.encode())
        response = await self.agent.request(method.encode(), (self.base + path).encode(),
                                            fields, None if body is None else Body(body))
        content = await readBody(response)
        return response, content


def header(response, name):
    values = response.headers.getRawHeaders(name.encode())
    return None if values is None else values[0].decode()
