"""Reading Google Benchmark JSON for the bench/run_*.sh tables: the median of each benchmark
(or its only run when it has one repetition), by name without the run suffixes."""
import json

_SUFFIX_WORDS = ("real_time", "manual_time")
_SUFFIX_PREFIXES = ("iterations:", "repeats:", "min_time:")


def base_name(run_name):
    """"lifecycle/1000/iterations:1/manual_time" -> "lifecycle/1000"."""
    return "/".join(p for p in run_name.split("/")
                    if p not in _SUFFIX_WORDS and not p.startswith(_SUFFIX_PREFIXES))


def load(path):
    """(the whole JSON document, {name: median entry})."""
    data = json.load(open(path))
    med = {}
    for b in data["benchmarks"]:
        name = base_name(b["run_name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                med[name] = b
        else:
            med.setdefault(name, b)  # single-repetition benchmarks have no aggregate
    return data, med


def us(med, name):
    """Wall time of `name` in microseconds (None if missing or failed)."""
    b = med.get(name)
    if b is None or b.get("error_occurred"):
        return None
    return b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]


def counter(med, name, key):
    b = med.get(name)
    return None if b is None or key not in b else b[key]


def rate(med, name):
    return counter(med, name, "items_per_second")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
