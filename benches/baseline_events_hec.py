"""Baseline for opsync's Events API benchmark (benches/audit_events.rs): the same job done the
plain way, as the Events API's published sample scripts do it: for each stream, a reset cursor
from eight days back, then POST after POST with the returned cursor while `has_more`, and every
page posted to Splunk HEC's `/services/collector/event` as concatenated JSON envelopes. One
request at a time with `requests`; no indexer acknowledgement is awaited.

Usage: python benches/baseline_events_hec.py EVENTS_URL EVENTS_TOKEN HEC_URL HEC_TOKEN
Prints one JSON line: {"items": N, "seconds": S} (items: records posted).
"""

import datetime
import json
import sys
import time

import requests

STREAMS = ["auditevents", "itemusages", "signinattempts"]


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    events_url, events_token, hec_url, hec_token = sys.argv[1:]
    started = time.monotonic()
    session = requests.Session()
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    posted = 0
    for stream in STREAMS:
        body = {"limit": 1000, "start_time": start}
        while True:
            page = session.post(
                f"{events_url}/api/v2/{stream}",
                headers={"Authorization": f"Bearer {events_token}"},
                json=body,
            )
            page.raise_for_status()
            page = page.json()
            items = page.get("items") or []
            if items:
                envelopes = "".join(
                    json.dumps({"sourcetype": f"1password:{stream}", "event": item}) for item in items
                )
                sent = session.post(
                    f"{hec_url}/services/collector/event",
                    headers={"Authorization": f"Splunk {hec_token}"},
                    data=envelopes,
                )
                sent.raise_for_status()
                posted += len(items)
            if not page.get("has_more"):
                break
            body = {"cursor": page["cursor"]}
    print(json.dumps({"items": posted, "seconds": time.monotonic() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
