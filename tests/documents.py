"""Documents the tests write: pres-rules, and the README's quick start's own."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


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


def quick_start():
    """@return: the README's quick start section, which the client tests follow."""
    text = README.read_text()
    return text[text.index("## Quick start with real clients"):text.index("## Options")]


def fenced(section, language):
    """@return: the first fenced block of C{language} in C{section}, unindented."""
    block = re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)
    return "\n".join(line[3:] if line.startswith("   ") else line
                     for line in block.splitlines()) + "\n"


def quick_start_users():
    """@return: the quick start's users.toml."""
    return fenced(quick_start(), "toml")


def quick_start_rules():
    """@return: alice's pres-rules of the quick start (the document its curl command PUTs)."""
    command = fenced(quick_start(), "sh")
    return re.search(r"<<'XML'\n(.*?)\nXML\n", command, re.S).group(1).encode() + b"\n"
