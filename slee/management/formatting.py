"""
The human output of the C{slee} command: tables and key/value lists made
from the management API's JSON answers (L{slee.management.cli} picks one
C{format_*} per command; C{--json} prints the answer itself).

Only the standard library is used, as in the command line.
"""

import time


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items()) if value else "-"
    return str(value)


def _names(value):
    """
    A list of names, from a list of strings or of dicts with an id/name.
    """
    if not isinstance(value, (list, tuple)):
        return _cell(value)
    names = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("id", item.get("name", item))
        names.append(_cell(item))
    return ", ".join(names) if names else "-"


def _count(value):
    if isinstance(value, (list, tuple, dict)):
        return str(len(value))
    return _cell(value)


def _col(header, key, fmt=_cell):
    return header, lambda row: fmt(row.get(key)) if isinstance(row, dict) else _cell(row)


def table(rows, columns, empty):
    """
    Format C{rows} (dicts) as aligned columns under a header line.

    @param columns: (header, function of a row giving the cell) pairs.
    @param empty: the text to show when there is no row.
    """
    if not rows:
        return empty
    lines = [[header for header, _ in columns]]
    lines += [[get(row).replace("\n", " ") for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in lines
    )


def _tabular(empty, *columns):
    """@return: the formatter of a list answer as a table of C{columns}
    (L{_col}), or C{empty} when it has no rows."""
    def format_rows(rows):
        return table(rows, columns, empty)
    return format_rows


def key_values(pairs):
    """
    Format (key, value) pairs as aligned C{key: value} lines.
    """
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs) + 1
    return "\n".join(f"{key + ':':<{width}} {value}".rstrip() for key, value in pairs)


def _duration(seconds):
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return _cell(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def _timestamp(value):
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))
    except (TypeError, ValueError, OverflowError, OSError):
        return _cell(value)


def _status_text(value):
    """An RA entity's status dict as C{key=a,b key=c}."""
    if not isinstance(value, dict):
        return _cell(value)
    return " ".join(
        f"{key}={','.join(map(_cell, item)) if isinstance(item, list) else _cell(item)}"
        for key, item in value.items()) or "-"


def _label(key):
    return str(key).replace("_", " ")


def format_status(data):
    if not isinstance(data, dict):
        return _cell(data)
    pairs = []
    for key, value in data.items():
        if key == "uptime":
            pairs.append(("uptime", _duration(value)))
        elif key == "counts" and isinstance(value, dict):
            pairs += [(_label(k), _cell(v)) for k, v in value.items()]
        elif key == "events" and isinstance(value, dict):
            text = ", ".join(f"{_label(k)} {_cell(v)}" for k, v in value.items())
            pairs.append(("events", text or "-"))
        else:
            pairs.append((_label(key), _cell(value)))
    return key_values(pairs)


def format_unit(data):
    if not isinstance(data, dict):
        return _cell(data)
    pairs = [
        (_label(key), _names(value)) for key, value in data.items() if key != "name"
    ]
    head = f"deployed unit {_cell(data.get('name'))}"
    return head + ("\n" + key_values(pairs) if pairs else "")


format_units = _tabular(
    "(no deployed units)",
    _col("NAME", "name"),
    _col("SERVICES", "services", _names),
    _col("SBBS", "sbbs", _count),
    _col("EVENT TYPES", "event_types", _count),
    _col("RA ENTITIES", "ra_entities", _names))


format_services = _tabular(
    "(no services)",
    _col("ID", "id"),
    _col("STATE", "state"),
    _col("PRIORITY", "priority"),
    _col("ROOT SBB", "root_sbb"),
    _col("ENTITIES", "root_entities", _count),
    _col("UNIT", "unit"))


format_ra_entities = _tabular(
    "(no RA entities)",
    _col("NAME", "name"),
    _col("TYPE", "type"),
    _col("STATE", "state"),
    _col("ACTIVITIES", "activities", _count),
    _col("UNIT", "unit"),
    _col("STATUS", "status", _status_text))


format_activities = _tabular(
    "(no activities)",
    _col("KEY", "key"),
    _col("RA", "ra"),
    _col("HANDLE", "handle"),
    _col("DURABLE", "durable"),
    _col("ATTACHED", "attached", _count),
    _col("NAMES", "names"),
    _col("ENDING", "ending"))


format_sbb_entities = _tabular(
    "(no SBB entities)",
    _col("ID", "id"),
    _col("SERVICE", "service"),
    _col("SBB", "sbb"),
    _col("PARENT", "parent"),
    _col("PRIORITY", "priority"),
    _col("ATTACHED", "attached", _count),
    _col("CHILDREN", "children", _count))


def format_usage(rows):
    flat = []
    for row in rows or ():
        if not isinstance(row, dict):
            continue
        base = {"service": row.get("service"), "sbb": row.get("sbb")}
        for name, value in sorted((row.get("counters") or {}).items()):
            flat.append(dict(base, parameter=name, kind="counter", value=value))
        for name, value in sorted((row.get("samples") or {}).items()):
            flat.append(dict(base, parameter=name, kind="sample", value=value))
    return table(
        flat,
        [
            _col("SERVICE", "service"),
            _col("SBB", "sbb"),
            _col("PARAMETER", "parameter"),
            _col("KIND", "kind"),
            _col("VALUE", "value"),
        ],
        "(no usage parameters)",
    )


format_alarms = _tabular(
    "(no active alarms)",
    _col("ID", "id"),
    _col("LEVEL", "level"),
    _col("RAISED", "raised", _timestamp),
    _col("SOURCE", "source"),
    _col("TYPE", "type"),
    _col("INSTANCE", "instance"),
    _col("MESSAGE", "message"))


def format_trace(data):
    if not isinstance(data, dict):
        return _cell(data)
    rows = [{"component": k, "level": v} for k, v in sorted(data.items())]
    return table(
        rows,
        [_col("COMPONENT", "component"), _col("LEVEL", "level")],
        "(no trace levels set)",
    )
