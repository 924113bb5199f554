# The twistd drop-in for slee: `twistd slee --help`.  All logic lives in
# slee.tap; this file is installed into twisted/plugins/ (see setup.cfg).
from twisted.application.service import ServiceMaker

slee = ServiceMaker(
    "slee",
    "slee.tap",
    "A JAIN SLEE-style service container (SIP presence, XDMS, RLS) on ZODB",
    "slee",
)
