"""
How a document sits in the XDMS's store: a database object of its own.

The store is a BTree (L{sbbs.xdms.server.STORE}), and a BTree bucket holds
up to 30 values.  Stored as plain (ETag, bytes) values, the documents of a
bucket were written together: a PUT of one 2 KiB document rewrote its
bucket's 30, some 50 KB on disk for every change (measured: 1,000 PUTs
wrote 49.6 MB).  So each document is a L{StoredDocument}, a small
persistent object the bucket refers to: a change rewrites that object
alone, and only a new or removed document rewrites its bucket (of
references).

A store written before holds (ETag, bytes) tuples; L{etag_and_content}
reads both, and L{store_document} turns a tuple into an object when the
document next changes.
"""

from persistent import Persistent


class StoredDocument(Persistent):
    """
    One stored document.

    @ivar etag: its strong ETag (with its quotes).
    @ivar content: its bytes.
    """

    def __init__(self, etag, content):
        self.etag = etag
        self.content = content

    def __getstate__(self):
        # A tuple, not the attribute dict: no names written with each change.
        return self.etag, self.content

    def __setstate__(self, state):
        self.etag, self.content = state


def etag_and_content(value):
    """
    @param value: what the store holds for a document: a L{StoredDocument},
        or the (ETag, bytes) tuple of a store written before; or None.
    @return: (ETag, bytes), or None.
    """
    if isinstance(value, StoredDocument):
        return value.etag, value.content
    return value


def store_document(store, key, etag, content):
    """Store C{content} with C{etag} under C{key}: in the document's object
    if it has one, else in a new one."""
    stored = store.get(key)
    if isinstance(stored, StoredDocument):
        stored.etag, stored.content = etag, content
    else:
        store[key] = StoredDocument(etag, content)
