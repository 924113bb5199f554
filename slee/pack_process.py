"""
Packing a FileStorage with the heavy part in a child process.

ZODB packs a FileStorage in two phases (C{ZODB.FileStorage.fspack}).  The
first reads the whole file up to where it ended when the pack began: it
finds which object revisions are still reachable, and copies them to a new
file.  The second copies what was committed meanwhile, one transaction at a
time, and then the storage swaps the files.  The first is nearly all of
the work, and it is Python code: in a thread of the server, it takes the
interpreter's lock from the reactor for most of its run (at half the
server's capacity in PUBLISHes, a pack made the SIP door shed 4.6% of a
5 s step's calls).

L{packer} is a FileStorage C{packer} (the storage option of that name)
that runs ZODB's own packer with its first phase moved to a child Python
process (L{main}, C{python -m slee.pack_process}, at the lowest priority),
which reads the storage file through a handle of its own as ZODB's packing
thread does.  The child then catches up: it copies, with ZODB's copying of
the second phase, the transactions committed meanwhile, as long as it finds
whole ones (their status no longer ZODB's in-progress 'c', their length
all in the file: the rule ZODB's own file iterator reads a live file by).
It leaves the new file and its index of object positions; the server's
packer picks them up and copies what is left, the last few transactions,
under the storage's commit lock as ZODB's second phase does.  A child that
has not caught up by L{CHILD_DEADLINE} (a server whose CPU is never idle
starves it) is stopped, and the pack given up until the next is due: a
pack must not end with the server copying what the child could not.

The child is ZODB's code, driven through the packer's own methods; a
storage with a blob directory (whose first phase also records the blobs it
drops) is packed the usual way, in the thread.
"""

import os
import subprocess
import sys
from types import SimpleNamespace

from ZODB.FileStorage import FileStorage
from ZODB.FileStorage.format import CorruptedDataError
from ZODB.FileStorage.fspack import FileStoragePacker, PackCopier
from ZODB.fsIndex import fsIndex
from ZODB.serialize import referencesf

#: Seconds a child may take, its catching up included, before the pack is
#: given up: an hour, the default time between packs on the clock (a child
#: of a big file on a CPU the server keeps busy takes long, and a pack
#: given up starts again from the beginning).
CHILD_DEADLINE = 3600

#: The suffixes of the files the child writes beside the storage's.
CHILD_FILE = ".pack-child"
CHILD_INDEX = ".pack-child.index"


def packer(storage, references, stop, gc):
    """
    Pack C{storage}: ZODB's C{FileStorage.packer}, with the first phase in
    a child process (see the module docstring).

    @return: what ZODB's packer returns: None when there was nothing to
        pack, else the new file's length and its index (with the storage's
        commit lock held, as the storage expects).
    """
    if storage.blob_dir:
        return FileStorage.packer(storage, references, stop, gc)
    packing = ChildPhasePacker(storage, references, stop, gc)
    try:
        end = packing.pack()
    except BaseException:
        # ZODB's packer removes its new file when an OSError stops it.
        if os.path.exists(packing._name + ".pack"):
            os.remove(packing._name + ".pack")
        raise
    finally:
        packing.close()
    if end is None:
        return None
    return end, packing.index


def use_child_packer(storage):
    """Have C{storage}, if it is a FileStorage, pack with L{packer}."""
    if isinstance(storage, FileStorage):
        storage.packer = packer


class ChildPhasePacker(FileStoragePacker):
    """
    ZODB's packer, whose first phase (finding what is reachable, and
    copying it up to the pack time) a child process runs.
    """

    def __init__(self, storage, references, stop, gc=True):
        super().__init__(storage, references, stop, gc)
        self.gc.findReachable = lambda: None     # the child does it

    def copyToPacktime(self):
        """
        Run the first phase in the child, and take its file and index as
        this packer's own.

        @return: the positions where the child stopped reading the
            storage's file and writing the new one.
        """
        child_file = self._name + CHILD_FILE
        child_index = self._name + CHILD_INDEX
        try:
            try:
                ended = subprocess.run(
                    [sys.executable, "-m", __name__, self._name, str(self.file_end),
                     self._stop.hex(), "gc" if self.gc.gc else "no-gc", child_file, child_index],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                    timeout=CHILD_DEADLINE)
            except subprocess.TimeoutExpired:
                raise PackChildError(
                    f"the child did not catch up within {CHILD_DEADLINE} s") from None
            if ended.returncode:
                raise PackChildError(ended.stderr.decode("utf-8", "replace").strip())
            read_to, written_to = (int(word) for word in ended.stdout.split())
            self.index = fsIndex.load(child_index)["index"]
            self._tfile.close()
            os.replace(child_file, self._name + ".pack")
        finally:
            for leftover in (child_file, child_index):
                if os.path.exists(leftover):
                    os.remove(leftover)
        self._tfile = open(self._name + ".pack", "r+b")
        self._tfile.seek(written_to)
        self._copier = PackCopier(self._tfile, self.index, self.tindex)
        # ZODB's packer checks that the first phase ended where its search
        # for reachable revisions did, and copies on from there.
        self.gc.packpos = read_to
        return read_to, written_to


class PackChildError(Exception):
    """
    The child process of a pack failed (the message is its error output),
    or ran past its deadline.
    """


class _StorageFile:
    """
    What ZODB's packer needs of a FileStorage, in the child: its file's
    name, the length of the file the first phase reads, and a commit lock,
    which ZODB's copying of a transaction lets go of and takes again, and
    which the child has no use for: it copies only whole transactions.
    """

    blob_dir = None

    def __init__(self, path, end):
        self._file = SimpleNamespace(name=path)
        self._end = end
        self._lock = self._commit_lock = _NoLock()

    def getSize(self):
        return self._end


class _NoLock:

    def acquire(self):
        pass

    def release(self):
        pass


def catch_up(packing, position):
    """
    Copy, through ZODB's packer C{packing}, the whole transactions
    committed from C{position} on, as long as there are.

    @return: the position after the last one copied.
    """
    # Unbuffered, as ZODB's packer reads the tail: a buffer could hold a
    # stale end of the file.
    packing._file.close()
    packing._file = open(packing._path, "rb", 0)
    while True:
        size = os.fstat(packing._file.fileno()).st_size
        try:
            header = packing._read_txn_header(position)
        except CorruptedDataError:                  # the end of the file
            return position
        if header.status == "c" or position + header.tlen + 8 > size:
            return position                         # still being committed
        position = packing.copyOne(position)


def pack_to_packtime(path, end, stop, gc, out_file, out_index):
    """
    The child's work: ZODB's first phase of packing the FileStorage at
    C{path}, read up to C{end}, into C{out_file}, then L{catch_up}, with
    the index of the object positions in C{out_file} saved to C{out_index}.

    @return: where the phase stopped reading C{path} and writing C{out_file}.
    """
    storage = _StorageFile(path, end)
    packing = FileStoragePacker(storage, referencesf, stop, gc)
    try:
        packing.gc.findReachable()
        packing._tfile = open(out_file, "w+b")
        packing._file.seek(0)
        packing._tfile.write(packing._file.read(packing._metadata_size))
        packing._copier = PackCopier(packing._tfile, packing.index, packing.tindex)
        read_to, written_to = packing.copyToPacktime()
        read_to = catch_up(packing, read_to)
        written_to = packing._tfile.tell()
        packing._tfile.flush()
        os.fsync(packing._tfile.fileno())
        packing.index.save(written_to, out_index)
        return read_to, written_to
    finally:
        packing.close()


#: The child's niceness: the lowest priority, so that where it shares a CPU
#: with the server (one CPU, or the server pinned to one), it takes what the
#: server leaves instead of half the CPU.
CHILD_NICENESS = 19


def main(argv):
    os.nice(CHILD_NICENESS)
    path, end, stop, gc, out_file, out_index = argv
    read_to, written_to = pack_to_packtime(path, int(end), bytes.fromhex(stop), gc == "gc",
                                           out_file, out_index)
    print(read_to, written_to)


if __name__ == "__main__":
    main(sys.argv[1:])
