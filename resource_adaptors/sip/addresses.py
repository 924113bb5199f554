"""
The addresses we advertise: what goes into our Via sent-by and Contacts
for a listening point.  On a wildcard interface that is the machine's
primary address (L{primary_address}), found by asking the kernel, which is
why this is in the shell and not in the core's L{listen} descriptions.
"""

import ipaddress
import socket


def advertised_host(description):
    """
    The sent-by host for a listening point of a
    L{resource_adaptors.sip.core.listen.ListenDescription}: the C{host} of
    its description, else its interface; on a wildcard interface, the
    machine's primary address of that family (L{primary_address}).  Not the
    machine's name: peers often cannot resolve it, and answers to a Via they
    cannot route are lost.
    """
    host = description.host
    if host is None:
        interface = description.interface or "0.0.0.0"
        address = ipaddress.ip_address(interface)
        host = primary_address(address.version) if address.is_unspecified else interface
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


#: Per IP version: a documentation address (RFC 5737, RFC 3849), which
#: stands for the rest of the world, and the loopback address.
_PROBES = {4: (socket.AF_INET, "192.0.2.1", "127.0.0.1"),
           6: (socket.AF_INET6, "2001:db8::1", "::1")}


def primary_address(version=4):
    """
    @return: the address of IP C{version} the machine's packets to the
        rest of the world leave from (a UDP socket connected to a
        documentation address: the kernel picks the route and the source
        address, and nothing is sent); the loopback address when there is
        no such route.
    """
    family, probe, loopback = _PROBES[version]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.connect((probe, 9))
            return probe_socket.getsockname()[0].split("%", 1)[0]
    except OSError:
        return loopback
