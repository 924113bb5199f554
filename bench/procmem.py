"""The memory of a server's processes, as the benchmarks against Kamailio read it (stdlib only)."""


def memory(pids):
    """@return: (VmRSS, Pss) in KiB, each summed over the processes C{pids}."""
    rss = pss = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            rss += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            pss += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    return rss, pss
