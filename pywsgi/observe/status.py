"""--server-status: the live status of every process, as HTML, JSON and Prometheus text.

The counters live in the scoreboard (csrc/scoreboard.c): shared memory the master maps before
it forks, one slot per process slot (server processes, then each daemon group's processes) and
one record per daemon process group.  A server process answers the status URL itself, from
that memory, so the page sees every process - in embedded and in daemon mode.  Nothing here
runs per request except for the status URL itself.

    URL                    the HTML page (polls URL?json every second, draws live charts)
    URL?json, URL/json     the same data as JSON
    URL?prometheus,        Prometheus text exposition format 0.0.4
    URL/metrics

Only clients in --server-status-allow (default: loopback, 127.0.0.0/8 and ::1) see it; others
get 403 and an error-log line.  See docs/server-status.md.
"""
from __future__ import annotations

import ipaddress
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from pywsgi.version import __version__

__all__ = ["DEFAULT_ALLOW", "allowed_networks", "is_allowed", "page_kind", "render",
           "status_document", "percentile", "prometheus_text"]

DEFAULT_ALLOW = ("127.0.0.0/8", "::1")
STATUS_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")
RELAY_ERRORS = ("502", "503", "504")
_LIVE_STATES = ("starting", "ready", "stopping")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_HTML_CACHE: List[str] = []


def as_network(value: Any):
    """One --server-status-allow value: an IPv4/IPv6 address or CIDR network."""
    if not isinstance(value, str):
        raise ValueError(f"expected an address or CIDR network, got {type(value).__name__}")
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network such as 10.0.0.0/8: {value!r}") \
            from None


def allowed_networks(values: Optional[Iterable[Any]]) -> Tuple:
    values = list(values or ()) or list(DEFAULT_ALLOW)
    return tuple(value if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                 else as_network(value) for value in values)


def is_allowed(peer: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


def page_kind(rest: str, query: str) -> Optional[str]:
    """What the URL asks for: 'html', 'json', 'prometheus', or None (404)."""
    if rest in ("", "/"):
        if query in ("", "html"):
            return "html"
        if query == "json":
            return "json"
        if query in ("prometheus", "metrics"):
            return "prometheus"
        return None
    if rest == "/json" and query == "":
        return "json"
    if rest in ("/metrics", "/prometheus") and query == "":
        return "prometheus"
    return None


def render(kind: str, snapshot: Dict[str, Any], url: str) -> Tuple[bytes, str]:
    document = status_document(snapshot, url)
    if kind == "json":
        return (json.dumps(document, indent=1).encode("utf-8") + b"\n",
                "application/json")
    if kind == "prometheus":
        return prometheus_text(document).encode("utf-8"), "text/plain; version=0.0.4; charset=utf-8"
    return html_page(document).encode("utf-8"), "text/html; charset=utf-8"


# ------------------------------------------------------------------ the JSON document

def _rss(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def percentile(buckets: List[int], bounds: List[float], q: float) -> Optional[float]:
    """The q-quantile (0..1) of a latency histogram, interpolated inside its bucket; None when
    it is empty.  The +Inf bucket answers with its lower bound."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            lower = bounds[i - 1] if i > 0 else 0.0
            if i >= len(bounds):
                return lower
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _latency(buckets: List[int], total_seconds: float, bounds: List[float]) -> Dict[str, Any]:
    return {
        "count": sum(buckets),
        "sum_seconds": round(total_seconds, 6),
        "buckets": list(buckets),
        "p50": percentile(buckets, bounds, 0.50),
        "p90": percentile(buckets, bounds, 0.90),
        "p99": percentile(buckets, bounds, 0.99),
    }


def status_document(snapshot: Dict[str, Any], url: str = "") -> Dict[str, Any]:
    """The scoreboard snapshot turned into the JSON document (docs/server-status.md)."""
    now = snapshot["now"]
    bounds = snapshot["bounds"]
    groups = snapshot["groups"]
    processes = []
    for slot in snapshot["slots"]:
        live = slot["state"] in _LIVE_STATES and slot["pid"] > 0
        group = groups[slot["group"]]["name"] if 0 <= slot["group"] < len(groups) else None
        processes.append({
            "slot": slot["slot"],
            "pid": slot["pid"],
            "role": slot["role"],
            "group": group,
            "index": slot["index"],
            "state": slot["state"],
            "threads": slot["threads"],
            "requests": slot["requests"],
            "bytes_out": slot["bytes_out"],
            "busy": slot["busy"],
            "connections": slot["connections"],
            "restarts": slot["restarts"],
            "started": slot["started"] or None,
            "uptime_seconds": round(now - slot["started"], 3) if live and slot["started"] else None,
            "rss_bytes": _rss(slot["pid"]) if live else None,
            "status": dict(zip(STATUS_CLASSES, slot["status"])),
            "latency": _latency(slot["latency"], slot["latency_sum"], bounds),
            "access_log_dropped": slot["access_log_dropped"],
        })
    servers = [p for p in snapshot["slots"] if p["role"] == "server"]
    buckets = [sum(p["latency"][i] for p in servers) for i in range(len(bounds) + 1)]
    totals = {
        "requests": sum(p["requests"] for p in servers),
        "bytes_out": sum(p["bytes_out"] for p in servers),
        "busy": sum(p["busy"] for p in servers),
        "connections": sum(p["connections"] for p in servers),
        "threads": sum(p["threads"] for p in servers if p["state"] in _LIVE_STATES),
        "restarts": sum(p["restarts"] for p in snapshot["slots"]),
        "status": {name: sum(p["status"][i] for p in servers)
                   for i, name in enumerate(STATUS_CLASSES)},
        "latency": _latency(buckets, sum(p["latency_sum"] for p in servers), bounds),
        "access_log_dropped": sum(p["access_log_dropped"] for p in servers),
    }
    group_rows = []
    for index, group in enumerate(groups):
        members = [p for p in snapshot["slots"] if p["role"] == "daemon" and p["group"] == index]
        serving = sum(min(p["busy"], p["threads"]) for p in members
                      if p["state"] in _LIVE_STATES)
        group_rows.append({
            "name": group["name"],
            "processes": len(members),
            "processes_ready": sum(1 for p in members if p["state"] == "ready"),
            # accepting requests, as the master counts them (what --ready-url reads)
            "processes_live": group.get("live", 0),
            "threads": sum(p["threads"] for p in members if p["state"] in _LIVE_STATES),
            "requests": group["relayed"],
            "served": sum(p["requests"] for p in members),
            "busy": group["in_flight"],
            # relayed and not yet taken by a daemon thread: in the socket backlog or queued
            "queue": max(0, group["in_flight"] - serving),
            "errors": dict(zip(RELAY_ERRORS, group["errors"])),
            "restarts": group["restarts"],
        })
    return {
        "server": {
            "software": f"pywsgi/{__version__}",
            "master_pid": snapshot["master_pid"],
            "started": snapshot["created"],
            "uptime_seconds": round(now - snapshot["created"], 3),
            "now": now,
            "url": url,
        },
        "latency_bounds": bounds,
        "totals": totals,
        "processes": processes,
        "groups": group_rows,
    }


# ------------------------------------------------------------------ Prometheus

def _label_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NaN"
    return str(value)


def prometheus_text(document: Dict[str, Any]) -> str:
    """Prometheus text exposition format 0.0.4: one family per metric, HELP and TYPE first,
    counters named *_total, the latency histogram with cumulative le buckets."""
    lines: List[str] = []

    def family(name: str, kind: str, help_text: str, samples) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            lines.append(f"{name}{suffix}{_labels(**labels)} {_number(value)}")

    processes = document["processes"]

    def who(p: Dict[str, Any]) -> Dict[str, Any]:
        return {"role": p["role"], "group": p["group"] or "", "process": p["index"]}

    family("pywsgi_requests_total", "counter", "Requests answered, per process.",
           [("", who(p), p["requests"]) for p in processes])
    family("pywsgi_responses_total", "counter", "Responses per status class, per process.",
           [("", dict(who(p), code=cls), n) for p in processes
            for cls, n in p["status"].items() if cls != "other" or n])
    family("pywsgi_response_body_bytes_total", "counter", "Response body bytes sent.",
           [("", who(p), p["bytes_out"]) for p in processes])
    family("pywsgi_busy", "gauge", "Requests queued for or held by a worker thread.",
           [("", who(p), p["busy"]) for p in processes])
    family("pywsgi_threads", "gauge", "Worker threads of the process.",
           [("", who(p), p["threads"]) for p in processes])
    family("pywsgi_connections", "gauge", "Open client connections.",
           [("", who(p), p["connections"]) for p in processes])
    family("pywsgi_process_restarts_total", "counter",
           "Processes started in this slot after the first (crashes, recycling, restarts).",
           [("", who(p), p["restarts"]) for p in processes])
    family("pywsgi_process_up", "gauge", "1 while the slot's process is ready to serve.",
           [("", who(p), 1 if p["state"] == "ready" else 0) for p in processes])
    family("pywsgi_process_start_time_seconds", "gauge",
           "Start time of the slot's process, seconds since the epoch.",
           [("", who(p), float(p["started"] or 0)) for p in processes])
    family("pywsgi_process_resident_memory_bytes", "gauge", "Resident memory of the process.",
           [("", who(p), p["rss_bytes"]) for p in processes if p["rss_bytes"] is not None])
    family("pywsgi_access_log_dropped_lines_total", "counter",
           "Access-log lines lost because writing the access log failed (a full disk).",
           [("", who(p), p["access_log_dropped"]) for p in processes if p["role"] == "server"])
    bounds = document["latency_bounds"]
    samples = []
    for p in processes:
        running = 0
        for bound, count in zip(bounds + [None], p["latency"]["buckets"]):
            running += count
            le = "+Inf" if bound is None else _number(float(bound))
            samples.append(("_bucket", dict(who(p), le=le), running))
        samples.append(("_sum", who(p), float(p["latency"]["sum_seconds"])))
        samples.append(("_count", who(p), p["latency"]["count"]))
    family("pywsgi_request_duration_seconds", "histogram",
           "Time from a complete request head to the end of the response.", samples)
    groups = document["groups"]
    if groups:
        family("pywsgi_daemon_group_requests_total", "counter",
               "Requests relayed to the daemon process group.",
               [("", {"group": g["name"]}, g["requests"]) for g in groups])
        family("pywsgi_daemon_group_busy", "gauge", "Relays to the group in progress.",
               [("", {"group": g["name"]}, g["busy"]) for g in groups])
        family("pywsgi_daemon_group_live_processes", "gauge",
               "Daemon processes of the group accepting requests (--ready-url is 503 at 0).",
               [("", {"group": g["name"]}, g["processes_live"]) for g in groups])
        family("pywsgi_daemon_group_queue", "gauge",
               "Relayed requests waiting for a daemon thread.",
               [("", {"group": g["name"]}, g["queue"]) for g in groups])
        family("pywsgi_daemon_group_errors_total", "counter",
               "Relays that failed: 502 daemon died, 503 queue timeout, 504 no answer in time.",
               [("", {"group": g["name"], "code": code}, n) for g in groups
                for code, n in g["errors"].items()])
        family("pywsgi_daemon_group_restarts_total", "counter",
               "Daemon processes of the group started again.",
               [("", {"group": g["name"]}, g["restarts"]) for g in groups])
    family("pywsgi_uptime_seconds", "gauge", "Seconds since the server started.",
           [("", {}, float(document["server"]["uptime_seconds"]))])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML

def html_page(document: Dict[str, Any]) -> str:
    """The page (pywsgi/observe/status.html) with the first snapshot inlined, so it shows numbers at
    once; its script then polls the JSON every second."""
    if not _HTML_CACHE:
        with open(os.path.join(os.path.dirname(__file__), "status.html"), encoding="utf-8") as f:
            _HTML_CACHE.append(f.read())
    initial = json.dumps(document).replace("</", "<\\/")
    url = document["server"]["url"]
    return (_HTML_CACHE[0].replace("__PYWSGI_STATUS_INITIAL__", initial)
            .replace("__PYWSGI_STATUS_JSON_URL__", json.dumps(url + "?json").replace("</", "<\\/")))
