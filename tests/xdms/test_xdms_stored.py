"""
How the XDMS stores a document (L{sbbs.xdms.stored}): an object of its own,
so that a change writes that document and not its bucket's others; and a
store written before, of (ETag, bytes) tuples, reads the same.
"""

import transaction
import ZODB
from BTrees.OOBTree import OOBTree
from ZODB.FileStorage import FileStorage

from sbbs.xdms.stored import StoredDocument, etag_and_content, store_document

DOCUMENT = b"<resource-lists/>" + b" " * 2048


def key(number):
    return ("resource-lists", "users", f"sip:user{number}@example.com", "index")


def test_a_change_writes_the_document_not_its_neighbours(tmp_path):
    db = ZODB.DB(FileStorage(str(tmp_path / "store.fs")))
    try:
        connection = db.open()
        store = connection.root()["store"] = OOBTree()
        for number in range(30):                # one bucket's worth
            store_document(store, key(number), f'"e{number}"', DOCUMENT)
        transaction.commit()
        before = db.getSize()
        store_document(store, key(7), '"changed"', DOCUMENT + b"!")
        transaction.commit()
        # The document and the transaction's header: not the 30 of the
        # bucket (60 KiB), as plain values in the tree were.
        assert db.getSize() - before < 2 * len(DOCUMENT)
        assert etag_and_content(store.get(key(7))) == ('"changed"', DOCUMENT + b"!")
        connection.close()
        connection = db.open()
        assert etag_and_content(connection.root()["store"][key(7)]) == (
            '"changed"', DOCUMENT + b"!")
        connection.close()
    finally:
        db.close()


def test_a_document_stored_as_a_tuple_reads_the_same_and_becomes_an_object():
    store = OOBTree({key(1): ('"old"', b"<old/>")})
    assert etag_and_content(store.get(key(1))) == ('"old"', b"<old/>")
    assert etag_and_content(store.get(key(2))) is None
    store_document(store, key(1), '"new"', b"<new/>")
    assert isinstance(store[key(1)], StoredDocument)
    assert etag_and_content(store[key(1)]) == ('"new"', b"<new/>")
