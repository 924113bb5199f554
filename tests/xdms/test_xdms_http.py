"""
The XDMS over real HTTP on 127.0.0.1: the XCAP RA and the XDMS service in a
container, driven by twisted.web's client.
"""

import pytest_twisted
from twisted.internet import defer

from slee.container import Container
from slee.settings import shipped_units
from units import memory_db
from xcapclient import Xdms, header

RL = "urn:ietf:params:xml:ns:resource-lists"
USER = "sip:joe@example.com"
DOC = f"/xcap-root/resource-lists/users/{USER}/index"
LIST = (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL}">\n'
        '<list name="friends">\n<entry uri="sip:bob@example.com"/>\n</list>\n'
        "</resource-lists>").encode()
RL_TYPE = "application/resource-lists+xml"


async def started_xdms(tmp_path, **properties):
    """@return: a started container with the XCAP RA (on a free port) and the XDMS, and that port."""
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", **properties}})
    await container.start()
    for unit in ("xcap", "xdms"):
        described = await container.deploy(str(shipped_units() / unit))
        for service in described["services"]:
            container.activate(service)
    return container, container.registry.ra_entities["xcap"].adaptor.port.getHost().port


@pytest_twisted.async_yield_fixture
async def xdms(tmp_path):
    container, port = await started_xdms(tmp_path, auth="trust-localhost")
    xdms = Xdms(container, port)
    yield xdms
    await xdms.pool.closeCachedConnections()
    await container.stop()


@pytest_twisted.ensureDeferred
async def test_a_document_put_read_replaced_and_deleted(xdms):
    response, _ = await xdms.request("GET", DOC)
    assert response.code == 404
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE)
    assert response.code == 201
    first = header(response, "etag")
    response, body = await xdms.request("GET", DOC)
    assert (response.code, body, header(response, "etag")) == (200, LIST, first)
    assert header(response, "content-type") == RL_TYPE
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE)
    assert response.code == 200 and header(response, "etag") != first
    response, _ = await xdms.request("DELETE", DOC)
    assert response.code == 200
    response, _ = await xdms.request("DELETE", DOC)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_conditional_requests(xdms):
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE, if_match="*")
    assert response.code == 412
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE, if_none_match="*")
    assert response.code == 201
    etag = header(response, "etag")
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE, if_none_match="*")
    assert response.code == 412
    response, _ = await xdms.request("GET", DOC, if_none_match=etag)
    assert response.code == 304
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE, if_match='"stale"')
    assert response.code == 412
    response, _ = await xdms.request("DELETE", DOC, if_match=etag)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_elements_and_attributes(xdms):
    await xdms.request("PUT", DOC, LIST, RL_TYPE)
    entry = DOC + '/~~/resource-lists/list%5B@name=%22friends%22%5D/entry'
    response, body = await xdms.request("GET", entry)
    assert (response.code, body) == (200, b'<entry uri="sip:bob@example.com"/>')
    assert header(response, "content-type") == "application/xcap-el+xml"
    new = DOC + '/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B@uri=%22sip:al@x%22%5D'
    response, _ = await xdms.request("PUT", new, b'<entry uri="sip:al@x"/>',
                                     "application/xcap-el+xml")
    assert response.code == 201
    response, body = await xdms.request("GET", new + "/@uri")
    assert (response.code, body) == (200, b"sip:al@x")
    response, body = await xdms.request("PUT", new, b'<entry uri="sip:other@x"/>',
                                        "application/xcap-el+xml")
    assert response.code == 409 and b"cannot-insert" in body
    assert header(response, "content-type") == "application/xcap-error+xml"
    response, _ = await xdms.request("DELETE", new)
    assert response.code == 200
    response, body = await xdms.request("GET", DOC)
    assert body == LIST.replace(b'<?xml version="1.0" encoding="UTF-8"?>',
                                b"<?xml version='1.0' encoding='UTF-8'?>")


EL_TYPE = "application/xcap-el+xml"
ATT_TYPE = "application/xcap-att+xml"


def node(selector):
    """@return: the path of the node C{selector} selects in the document L{DOC}."""
    return DOC + "/~~/" + selector.replace("[", "%5B").replace("]", "%5D").replace('"', "%22")


@pytest_twisted.ensureDeferred
async def test_an_element_is_given_as_written_without_its_ancestors_namespace_bindings(xdms):
    # RFC 4825 §8.3: the client learns those with namespace::*.
    listed = ('<list name="friends" x:flag="1">\n'
              '<entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>\n'
              '<x:note xmlns:y="urn:y" y:a="b"/>\n</list>')
    document = f'<resource-lists xmlns="{RL}" xmlns:x="urn:x">{listed}</resource-lists>'
    response, _ = await xdms.request("PUT", DOC, document.encode(), RL_TYPE)
    assert response.code == 201
    for selector, expected in [
            ('resource-lists/list[@name="friends"]', listed),
            ("resource-lists/list/entry", '<entry uri="sip:bob@example.com">'
                                          "<display-name>Bob</display-name></entry>"),
            ("resource-lists/list/*[2]", '<x:note xmlns:y="urn:y" y:a="b"/>')]:
        response, body = await xdms.request("GET", node(selector))
        assert (response.code, body) == (200, expected.encode()), selector
    response, body = await xdms.request("GET", node("resource-lists/list/namespace::*"))
    assert b'xmlns:x="urn:x"' in body and f'xmlns="{RL}"'.encode() in body
    # a prefixed document element: its declaration stays on it
    prefixed = (f'<rl:resource-lists xmlns:rl="{RL}">'
                '<rl:list xmlns:z="urn:z" name="a"><rl:entry uri="sip:a@x"/></rl:list>'
                "</rl:resource-lists>")
    response, _ = await xdms.request("PUT", DOC, prefixed.encode(), RL_TYPE)
    assert response.code == 200
    response, body = await xdms.request("GET", node("resource-lists/list"))
    assert body == b'<rl:list xmlns:z="urn:z" name="a"><rl:entry uri="sip:a@x"/></rl:list>'
    response, body = await xdms.request("GET", node("resource-lists/list/entry"))
    assert body == b'<rl:entry uri="sip:a@x"/>'
    # what an element PUT puts, a GET gives back, byte for byte
    response, _ = await xdms.request("PUT", node('resource-lists/list/entry[@uri="sip:b@x"]'),
                                     b'<rl:entry uri="sip:b@x"/>', EL_TYPE)
    assert response.code == 201
    response, body = await xdms.request("GET", node('resource-lists/list/entry[@uri="sip:b@x"]'))
    assert body == b'<rl:entry uri="sip:b@x"/>'


@pytest_twisted.ensureDeferred
async def test_resource_lists_names_uris_refs_and_anchors_are_unique_in_their_parent(xdms):
    from lxml import etree

    async def refused(method_path, body, content_type=RL_TYPE):
        response, content = await xdms.request("PUT", method_path, body.encode(), content_type)
        assert response.code == 409, content
        [condition] = etree.fromstring(content)
        assert condition.tag == "{urn:ietf:params:xml:ns:xcap-error}uniqueness-failure"
        [exists] = condition
        return exists.get("field"), [alternative.text for alternative in exists]

    def lists(body):
        return f'<resource-lists xmlns="{RL}">{body}</resource-lists>'

    # RFC 4826 §3.4.5, on document PUTs
    assert await refused(DOC, lists('<list name="a"/><list name="b"/><list name="a"/>')) == \
        ("resource-lists/list[3]/@name", ["a-1", "a-2", "a-3"])
    assert await refused(DOC, lists('<list><entry uri="sip:a@x"/><entry uri="sip:a@x"/></list>')) \
        == ("resource-lists/list[1]/entry[2]/@uri", [])
    assert (await refused(DOC, lists('<list><entry-ref ref="r"/><entry-ref ref="r"/></list>')))[0] \
        == "resource-lists/list[1]/entry-ref[2]/@ref"
    assert (await refused(DOC, lists('<list><list name="in"><external anchor="http://x/a"/>'
                                     '<external anchor="http://x/a"/></list></list>')))[0] \
        == "resource-lists/list[1]/list[1]/external[2]/@anchor"
    response, _ = await xdms.request("GET", DOC)
    assert response.code == 404
    # the same values in different parents are fine
    document = lists('<list name="a"><entry uri="sip:a@x"/><list name="a">'
                     '<entry uri="sip:a@x"/></list></list><list name="b"/>')
    response, _ = await xdms.request("PUT", DOC, document.encode(), RL_TYPE)
    assert response.code == 201
    # and on element and attribute PUTs
    assert await refused(node('resource-lists/list[@name="a"]/entry[2]'),
                         '<entry uri="sip:a@x"/>', EL_TYPE) == \
        ("resource-lists/list[1]/entry[2]/@uri", [])
    assert await refused(node("resource-lists/list[2]/@name"), "a", ATT_TYPE) == \
        ("resource-lists/list[2]/@name", ["a-1", "a-2", "a-3"])
    response, body = await xdms.request("GET", DOC)
    assert body == document.encode()


@pytest_twisted.ensureDeferred
async def test_a_delete_is_refused_only_when_the_uri_would_then_select_another_node(xdms):
    # RFC 4825 §8.4: after a DELETE, a GET of the URI must be a 404.
    document = (f'<resource-lists xmlns="{RL}"><list name="friends">'
                '<entry uri="sip:a@x"/><entry uri="sip:b@x"/></list></resource-lists>')
    await xdms.request("PUT", DOC, document.encode(), RL_TYPE)
    response, body = await xdms.request("DELETE", node("resource-lists/list/entry[1]"))
    assert response.code == 409 and b"cannot-delete" in body      # entry[2] would be entry[1]
    response, _ = await xdms.request("DELETE", node('resource-lists/list[@name="friends"]/@name'))
    assert response.code == 200                                   # the URI then selects nothing
    response, _ = await xdms.request("DELETE", node('resource-lists/list[@name="friends"]/@name'))
    assert response.code == 404
    response, _ = await xdms.request("DELETE", node('resource-lists/list/entry[@uri="sip:a@x"]'))
    assert response.code == 200
    response, _ = await xdms.request("DELETE", node("resource-lists/list/entry[1]"))
    assert response.code == 200                                   # the last one
    response, body = await xdms.request("GET", DOC)
    assert body.endswith(f'<resource-lists xmlns="{RL}"><list/></resource-lists>'.encode())


@pytest_twisted.ensureDeferred
async def test_bad_requests_get_the_right_answer_and_store_nothing(xdms):
    cases = [
        ("PUT", DOC, b"<resource-lists", RL_TYPE, 409, b"not-well-formed"),
        ("PUT", DOC, b'<other xmlns="urn:x"/>', RL_TYPE, 409, b"schema-validation-error"),
        ("PUT", DOC, LIST, "text/plain", 415, b""),
        ("PUT", DOC, b'<!DOCTYPE r [<!ENTITY a "b">]><r/>', RL_TYPE, 409, b"not-well-formed"),
        ("GET", "/xcap-root/no-such-usage/users/joe/index", None, None, 404, b""),
        ("GET", "/xcap-root/resource-lists/users/joe/../bob/index", None, None, 404, b""),
        ("GET", DOC + "/~~/a%5B", None, None, 400, b""),
        ("POST", DOC, b"x", "text/plain", 405, b""),
        ("GET", "/elsewhere", None, None, 404, b""),
    ]
    for method, path, body, content_type, status, text in cases:
        response, content = await xdms.request(method, path, body, content_type)
        assert response.code == status, (method, path, content)
        assert text in content
    response, _ = await xdms.request("GET", DOC)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_a_body_over_the_limit_is_refused_before_it_is_read(xdms):
    response, _ = await xdms.request("PUT", DOC, b"x" * (1 << 20 + 1), RL_TYPE)
    assert response.code == 413
    response, _ = await xdms.request("GET", DOC)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_curl_puts_and_gets_a_document(xdms, tmp_path):
    from twisted.internet.utils import getProcessOutputAndValue
    document = tmp_path / "index.xml"
    document.write_bytes(LIST)
    url = xdms.base + DOC.replace(USER, "sip%3Ajoe%40example.com")
    out, err, code = await getProcessOutputAndValue("curl", [
        "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H",
        f"Content-Type: {RL_TYPE}", "--data-binary", f"@{document}", url])
    assert (code, out) == (0, b"201"), err
    out, err, code = await getProcessOutputAndValue("curl", ["-sS", "-D", "-", url])
    assert code == 0, err
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"ETag:" in head and body == LIST


USERS = """realm = "example.com"

[users."joe@example.com"]
password = "secret"

[users."bob@example.com"]
ha1-sha256 = "{bob_sha256}"

[users.root]
password = "toor"
admin = true
"""


def users_file(tmp_path):
    from resource_adaptors.auth.users import ha1
    path = tmp_path / "users.toml"
    path.write_text(USERS.format(
        bob_sha256=ha1("SHA-256", "bob@example.com", "example.com", "bobs")))
    return str(path)


@pytest_twisted.async_yield_fixture
async def digest_xdms(tmp_path):
    container, port = await started_xdms(tmp_path, users=users_file(tmp_path))
    yield f"http://127.0.0.1:{port}"
    await container.stop()


async def curl(*arguments):
    """@return: curl's HTTP status for a request, run with --digest."""
    from twisted.internet.utils import getProcessOutputAndValue
    out, err, code = await getProcessOutputAndValue(
        "curl", ["-sS", "--digest", "-o", "/dev/null", "-w", "%{http_code}", *arguments])
    assert code == 0, err
    return int(out)


@pytest_twisted.ensureDeferred
async def test_digest_users_reach_their_own_documents_only(digest_xdms, tmp_path):
    document = tmp_path / "index.xml"
    document.write_bytes(LIST)
    put = ["-X", "PUT", "-H", f"Content-Type: {RL_TYPE}", "--data-binary", f"@{document}"]
    joe = digest_xdms + "/xcap-root/resource-lists/users/sip:joe@example.com/index"
    bob = digest_xdms + "/xcap-root/resource-lists/users/sip:bob@example.com/index"
    common = digest_xdms + "/xcap-root/resource-lists/global/index"
    assert await curl(joe) == 401                                   # no credentials
    assert await curl("-u", "joe@example.com:wrong", joe) == 401
    assert await curl("-u", "joe@example.com:secret", *put, joe) == 201
    assert await curl("-u", "joe@example.com:secret", joe) == 200
    assert await curl("-u", "joe@example.com:secret", *put, bob) == 403
    assert await curl("-u", "bob@example.com:bobs", *put, bob) == 201   # an HA1 in the store
    assert await curl("-u", "joe@example.com:secret", *put, common) == 403
    assert await curl("-u", "root:toor", *put, common) == 201
    assert await curl("-u", "joe@example.com:secret", common) == 200
    assert await curl("-u", "root:toor", joe) == 200


@pytest_twisted.ensureDeferred
async def test_xcap_caps_lists_the_usages_and_is_read_only(xdms):
    from lxml import etree
    caps = "/xcap-root/xcap-caps/global/index"
    response, body = await xdms.request("GET", caps)
    assert response.code == 200
    assert header(response, "content-type") == "application/xcap-caps+xml"
    namespace = "{urn:ietf:params:xml:ns:xcap-caps}"
    auids = [auid.text for auid in etree.fromstring(body).iter(namespace + "auid")]
    assert {"xcap-caps", "resource-lists", "pres-rules", "rls-services",
            "pidf-manipulation"} <= set(auids)
    response, body = await xdms.request("GET", caps + "/~~/xcap-caps/auids/auid%5B1%5D")
    assert response.code == 200 and body.startswith(b"<auid")
    response, _ = await xdms.request("GET", caps, if_none_match=header(response, "etag"))
    assert response.code == 304
    response, _ = await xdms.request("PUT", caps, body, "application/xcap-caps+xml")
    assert response.code == 405 and header(response, "allow") == "GET"
    response, _ = await xdms.request("GET", "/xcap-root/xcap-caps/users/sip:joe@x/index")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_no_parent_names_the_closest_existing_ancestor(xdms):
    from lxml import etree
    namespace = "{urn:ietf:params:xml:ns:xcap-error}"

    async def ancestor(path):
        response, body = await xdms.request("PUT", path, b"<entry/>", "application/xcap-el+xml")
        assert response.code == 409
        [condition] = etree.fromstring(body)
        assert condition.tag == namespace + "no-parent"
        return condition.find(namespace + "ancestor").text

    host = xdms.base.split("//")[1]
    assert await ancestor(DOC + "/~~/resource-lists/list/entry") == \
        f"http://{host}/xcap-root/resource-lists/users/sip:joe@example.com"
    await xdms.request("PUT", DOC, LIST, RL_TYPE)
    assert await ancestor(DOC + '/~~/resource-lists/list%5B@name=%22x%22%5D/entry') == \
        f"http://{host}{DOC}/~~/resource-lists"
    assert await ancestor(DOC + "/~~/resource-lists/list/other/entry") == \
        f"http://{host}{DOC}/~~/resource-lists/list"
    assert await ancestor(DOC + "/~~/other/entry") == f"http://{host}{DOC}"


@pytest_twisted.ensureDeferred
async def test_the_xcap_directory_lists_a_users_documents_with_their_etags(xdms):
    from lxml import etree
    directory = f"/xcap-root/org.openmobilealliance.xcap-directory/users/{USER}/directory.xml"
    response, _ = await xdms.request("PUT", DOC, LIST, RL_TYPE)
    etag = header(response, "etag")
    other = "/xcap-root/resource-lists/users/sip:bob@example.com/index"
    await xdms.request("PUT", other, LIST, RL_TYPE)
    response, body = await xdms.request("GET", directory)
    assert response.code == 200
    assert header(response, "content-type") == "application/vnd.oma.xcap-directory+xml"
    namespace = "{urn:oma:xml:xdm:xcap-directory}"
    folders = {folder.get("auid"): [(entry.get("uri"), entry.get("etag")) for entry in folder]
               for folder in etree.fromstring(body).iter(namespace + "folder")}
    assert folders["resource-lists"] == [(xdms.base + DOC, etag)]     # not bob's
    assert folders["pres-rules"] == []
    first = header(response, "etag")
    await xdms.request("DELETE", DOC)
    response, body = await xdms.request("GET", directory)
    assert header(response, "etag") != first and b"<entry" not in body


async def schema_refuses(xdms, path, body, content_type):
    """A PUT of C{body} gets 409 schema-validation-error, with a phrase saying why."""
    from lxml import etree
    response, content = await xdms.request("PUT", path, body, content_type)
    assert response.code == 409
    [condition] = etree.fromstring(content)
    assert condition.tag == "{urn:ietf:params:xml:ns:xcap-error}schema-validation-error"
    assert condition.get("phrase")


@pytest_twisted.ensureDeferred
async def test_resource_lists_are_validated_against_their_schema(xdms):
    invalid = [
        f'<resource-lists xmlns="{RL}"><entry uri="sip:a@x"/></resource-lists>',  # not in a list
        f'<resource-lists xmlns="{RL}"><list><entry/></list></resource-lists>',    # no uri
        f'<resource-lists xmlns="{RL}"><list><bogus/></list></resource-lists>',
    ]
    for document in invalid:
        await schema_refuses(xdms, DOC, document.encode(), RL_TYPE)
    extended = (f'<resource-lists xmlns="{RL}" xmlns:x="urn:x"><list name="a" x:flag="1">'
                '<display-name xml:lang="en">A</display-name><entry uri="sip:a@x"><x:note/>'
                '</entry><list name="b"/><x:extra/></list></resource-lists>')
    response, _ = await xdms.request("PUT", DOC, extended.encode(), RL_TYPE)
    assert response.code == 201
    # an element PUT that would make the document invalid is refused, and changes nothing
    response, _ = await xdms.request("PUT", DOC + "/~~/resource-lists/list/bogus", b"<bogus/>",
                                     "application/xcap-el+xml")
    assert response.code == 409
    response, body = await xdms.request("GET", DOC)
    assert body == extended.encode()


RLS = "urn:ietf:params:xml:ns:rls-services"
RLS_TYPE = "application/rls-services+xml"


def services(*uris):
    body = "".join(f'<service uri="{uri}"><resource-list>http://x/l</resource-list>'
                   "<packages><package>presence</package></packages></service>" for uri in uris)
    return f'<rls-services xmlns="{RLS}">{body}</rls-services>'.encode()


@pytest_twisted.ensureDeferred
async def test_rls_service_uris_are_unique_across_users(xdms):
    from lxml import etree
    joe = "/xcap-root/rls-services/users/sip:joe@example.com/index"
    bob = "/xcap-root/rls-services/users/sip:bob@example.com/index"

    async def refused(path, body):
        response, content = await xdms.request("PUT", path, body, RLS_TYPE)
        assert response.code == 409
        [condition] = etree.fromstring(content)
        assert condition.tag.endswith("uniqueness-failure")
        [exists] = condition
        assert exists.get("field") == "rls-services/service/@uri"
        return [alternative.text for alternative in exists]

    response, _ = await xdms.request("PUT", joe, services("sip:buddies@example.com"), RLS_TYPE)
    assert response.code == 201
    assert await refused(bob, services("sip:buddies@example.com")) == \
        ["sip:buddies-1@example.com", "sip:buddies-2@example.com", "sip:buddies-3@example.com"]
    assert await refused(joe, services("sip:a@x", "sip:a@x"))             # twice in one document
    response, _ = await xdms.request("PUT", joe, services("sip:buddies@example.com",
                                                          "sip:more@example.com"), RLS_TYPE)
    assert response.code == 200                                          # its own URI again
    response, _ = await xdms.request("PUT", bob, services("sip:buddies-1@example.com"),
                                     RLS_TYPE)
    assert response.code == 201
    assert "sip:buddies-2@example.com" == (await refused(bob, services("sip:buddies@example.com")))[0]
    await xdms.request("DELETE", joe)                                    # frees its URIs
    response, _ = await xdms.request("PUT", bob, services("sip:buddies@example.com"), RLS_TYPE)
    assert response.code == 200
    await schema_refuses(xdms, joe, b'<rls-services xmlns="%s"><service/></rls-services>'
                         % RLS.encode(), RLS_TYPE)


@pytest_twisted.ensureDeferred
async def test_pidf_manipulation_documents_are_pidf(xdms):
    path = "/xcap-root/pidf-manipulation/users/sip:joe@example.com/index"
    pidf = (b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:joe@example.com" '
            b'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"><tuple id="t1"><status>'
            b'<basic>open</basic></status><rpid:class>x</rpid:class></tuple></presence>')
    response, _ = await xdms.request("PUT", path, pidf, "application/pidf+xml")
    assert response.code == 201
    await schema_refuses(xdms, path, pidf.replace(b"open", b"maybe"), "application/pidf+xml")


@pytest_twisted.ensureDeferred
async def test_pres_rules_are_common_policy_with_presence_rules(xdms):
    path = "/xcap-root/pres-rules/users/sip:joe@example.com/index"
    rules = (b'<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" '
             b'xmlns:pr="urn:ietf:params:xml:ns:pres-rules"><cp:rule id="wp">'
             b'<cp:conditions><cp:identity><cp:one id="sip:bob@example.com"/></cp:identity>'
             b'</cp:conditions><cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>'
             b'<cp:transformations><pr:provide-services><pr:all-services/></pr:provide-services>'
             b'</cp:transformations></cp:rule></cp:ruleset>')
    response, _ = await xdms.request("PUT", path, rules, "application/auth-policy+xml")
    assert response.code == 201
    for bad in (rules.replace(b">allow<", b">sometimes<"), rules.replace(b' id="wp"', b"")):
        await schema_refuses(xdms, path, bad, "application/auth-policy+xml")
    rule = path + "/~~/ruleset/rule%5B@id=%22wp%22%5D/actions/pr:sub-handling"
    response, body = await xdms.request(
        "GET", rule + "?xmlns(pr=urn:ietf:params:xml:ns:pres-rules)")
    assert response.code == 200 and b">allow<" in body


@pytest_twisted.ensureDeferred
async def test_xcap_over_https(tmp_path, monkeypatch):
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "sip"))
    from certificates import self_signed
    certificate, key = self_signed(tmp_path)
    container, port = await started_xdms(
        tmp_path, auth="trust-localhost",
        endpoint=f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}")
    try:
        document = tmp_path / "index.xml"
        document.write_bytes(LIST)
        url = f"https://127.0.0.1:{port}{DOC}"
        put = ["-X", "PUT", "-H", f"Content-Type: {RL_TYPE}", "--data-binary", f"@{document}"]
        assert await curl("--cacert", str(certificate), *put, url) == 201
        assert await curl("--cacert", str(certificate), url) == 200
    finally:
        await container.stop()


@pytest_twisted.ensureDeferred
async def test_oversized_headers_and_uris_are_refused_before_parsing(xdms):
    from twisted.internet import protocol, reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    class Raw(protocol.Protocol):
        def __init__(self):
            self.received = b""
            self.closed = defer.Deferred()

        def dataReceived(self, data):
            self.received += data

        def connectionLost(self, reason):
            self.closed.callback(self.received)

    async def raw(request):
        port = int(xdms.base.rsplit(":", 1)[1])
        client = Raw()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        client.transport.write(request)
        return await client.closed

    huge_header = b"GET " + DOC.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + \
        b"\r\nConnection: close\r\n\r\n"
    assert (await raw(huge_header)).startswith(b"HTTP/1.1 4")
    response, _ = await xdms.request("GET", DOC + "/~~/" + "a/" * 2100 + "a")
    assert response.code == 414


@pytest_twisted.ensureDeferred
async def test_what_a_user_stores_is_bounded(xdms, monkeypatch):
    from sbbs.xdms import server
    monkeypatch.setattr(server, "MAX_DOCUMENTS_PER_USER", 2)
    monkeypatch.setattr(server, "MAX_DOCUMENT_SIZE", len(LIST) + 30)   # room for one list
    for name in ("a", "b"):
        response, _ = await xdms.request("PUT", DOC.replace("index", name), LIST, RL_TYPE)
        assert response.code == 201
    response, body = await xdms.request("PUT", DOC, LIST, RL_TYPE)      # a third document
    assert response.code == 409 and b"constraint-failure" in body
    response, _ = await xdms.request("PUT", DOC.replace("index", "a"), LIST, RL_TYPE)
    assert response.code == 200                                          # replacing is fine
    response, _ = await xdms.request(
        "PUT", "/xcap-root/resource-lists/users/sip:bob@example.com/index", LIST, RL_TYPE)
    assert response.code == 201                                          # another user's
    grow = DOC.replace("index", "a") + "/~~/resource-lists/list%5B@name=%22grown%22%5D"
    response, body = await xdms.request("PUT", grow, b'<list name="grown"/>',
                                        "application/xcap-el+xml")
    assert response.code == 201
    response, body = await xdms.request("PUT", grow.replace("grown", "more"),
                                        b'<list name="more"/>', "application/xcap-el+xml")
    assert response.code == 409 and b"constraint-failure" in body        # over the size


@pytest_twisted.ensureDeferred
async def test_an_app_usage_brings_its_own_authorization_policy(digest_xdms, tmp_path,
                                                                monkeypatch):
    """A usage registered by a package: every user reads everyone's notes, owners write them."""
    from sbbs.xdms.appusage import REGISTRY, AppUsage, owner_policy

    def shared_notes(user, document, method):
        return method == "GET" or owner_policy(user, document, method)

    usage = AppUsage("org.example.notes", "application/vnd.example.notes+xml",
                     "urn:example:notes", "notes", authorize=shared_notes)
    monkeypatch.setitem(REGISTRY._usages, usage.auid, usage)
    document = tmp_path / "notes.xml"
    document.write_bytes(b'<notes xmlns="urn:example:notes">hello</notes>')
    put = ["-X", "PUT", "-H", f"Content-Type: {usage.mime_type}", "--data-binary", f"@{document}"]
    joes = digest_xdms + "/xcap-root/org.example.notes/users/sip:joe@example.com/index"
    joes_lists = digest_xdms + "/xcap-root/resource-lists/users/sip:joe@example.com/index"
    assert await curl("-u", "joe@example.com:secret", *put, joes) == 201
    assert await curl("-u", "bob@example.com:bobs", joes) == 200       # the usage's policy
    assert await curl("-u", "bob@example.com:bobs", *put, joes) == 403
    assert await curl("-u", "bob@example.com:bobs", joes_lists) == 403   # the default one


RLS = "urn:ietf:params:xml:ns:rls-services"
RLS_TYPE = "application/rls-services+xml"


def rls_services(*uris):
    services = "".join(f'<service uri="{uri}"><list><entry uri="sip:bob@example.com"/></list>'
                       f'<packages><package>presence</package></packages></service>'
                       for uri in uris)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<rls-services xmlns="{RLS}" '
            f'xmlns:rl="{RL}">{services}</rls-services>').encode()


@pytest_twisted.ensureDeferred
async def test_the_rls_services_global_index_holds_every_users_services(xdms):
    from lxml import etree
    index = "/xcap-root/rls-services/global/index"
    response, body = await xdms.request("GET", index)
    assert response.code == 200 and b"<service" not in body
    await xdms.request("PUT", f"/xcap-root/rls-services/users/{USER}/index",
                       rls_services("sip:joe@example.com;pres-list=a", "sip:joe-b@example.com"),
                       RLS_TYPE)
    await xdms.request("PUT", "/xcap-root/rls-services/users/sip:bob@example.com/index",
                       rls_services("sip:bob-list@example.com"), RLS_TYPE)
    response, body = await xdms.request("GET", index)
    assert header(response, "content-type") == RLS_TYPE
    uris = [service.get("uri") for service in etree.fromstring(body).iter(f"{{{RLS}}}service")]
    assert sorted(uris) == ["sip:bob-list@example.com", "sip:joe-b@example.com",
                            "sip:joe@example.com;pres-list=a"]
    owners = {service.get("uri"): service.get("{urn:slee:params:xml:ns:xdms}owner")
              for service in etree.fromstring(body).iter(f"{{{RLS}}}service")}
    assert owners["sip:bob-list@example.com"] == "sip:bob@example.com"
    assert owners["sip:joe-b@example.com"] == USER
    response, _ = await xdms.request("PUT", index, body, RLS_TYPE)
    assert response.code == 405 and header(response, "allow") == "GET"


@pytest_twisted.ensureDeferred
async def test_the_rls_services_global_index_is_for_administrators(tmp_path):
    container, port = await started_xdms(tmp_path, users=users_file(tmp_path))
    try:
        index = f"http://127.0.0.1:{port}/xcap-root/rls-services/global/index"
        assert await curl("-u", "joe@example.com:secret", index) == 403
        assert await curl("-u", "root:toor", index) == 200
    finally:
        await container.stop()
