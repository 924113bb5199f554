"""XML documents the tests write to the XDMS."""


def pres_rules(sub_handling, watcher):
    """A pres-rules document (RFC 5025) giving C{watcher} C{sub_handling}, and all it may see."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" '
            f'xmlns:cr="urn:ietf:params:xml:ns:common-policy">'
            f'<cr:rule id="r1"><cr:conditions><cr:identity><cr:one id="{watcher}"/>'
            f'</cr:identity></cr:conditions>'
            f'<cr:actions><sub-handling>{sub_handling}</sub-handling></cr:actions>'
            f'<cr:transformations><provide-services><all-services/></provide-services>'
            f'<provide-persons><all-persons/></provide-persons>'
            f'<provide-devices><all-devices/></provide-devices><provide-all-attributes/>'
            f'</cr:transformations></cr:rule></cr:ruleset>').encode()
