#!/usr/bin/env python3
"""Checks that every surge the gateway lists reached the webhook receiver exactly once.

Usage: check_delivery.py SURGES_JSON RECEIVER_LOG
  SURGES_JSON   the gateway's answer to GET /v1/surges?limit=10000
  RECEIVER_LOG  webhook_receiver.py's log (one JSON line per delivery)

The subscription of deploy/podman-test.sh asks for everything (every country, category and
source, low severity and up, falls, closing notices, history surge by surge), so a listed
surge is sent unless notify holds it back by design: another period of an incident already
announced, no louder (incident_update "continued", at the live edge: recorded, not
announced). Surges of one story travel together in one message.

Fails (exit 1) when a surge that should have been sent never was, one was sent twice (in
two messages, or one message delivered twice), something was sent that the gateway does not
list, or the list is full (10,000: the check would not see them all).
"""
import collections
import json
import sys


def expected(surge):
    """Whether notify sends this listed surge to a subscription that asks for everything."""
    update = surge.get("incident_update", "opened")
    return bool(surge.get("historical")) or update in ("opened", "escalated", "closed")


def main():
    surges_path, log_path = sys.argv[1], sys.argv[2]
    with open(surges_path, encoding="utf-8") as f:
        listed = json.load(f)["surges"]
    ids = [s["id"] for s in listed]
    with open(log_path, encoding="utf-8") as f:
        deliveries = [json.loads(line) for line in f if line.strip()]

    problems = []
    if len(ids) >= 10000:
        problems.append("the gateway listed 10,000 surges: the list may be cut")
    dup_listed = [i for i, n in collections.Counter(ids).items() if n > 1]
    if dup_listed:
        problems.append(f"listed more than once by the gateway: {dup_listed[:10]}")
    want = {s["id"] for s in listed if expected(s)}
    held_back = len(set(ids)) - len(want)

    events = collections.Counter(d["event_id"] for d in deliveries)
    repeated_events = {e: n for e, n in events.items() if n > 1}
    sent = collections.Counter(i for d in deliveries for i in d["surges"])
    twice = {i: n for i, n in sent.items() if n > 1}
    missing = sorted(want - set(sent))
    unlisted = sorted(set(sent) - set(ids))
    not_expected = sorted((set(sent) & set(ids)) - want)
    bundled = sum(1 for d in deliveries if len(d["surges"]) > 1)

    print(
        f"check: {len(ids)} surges listed by the gateway, {len(want)} to be sent "
        f"({held_back} held back by design: incident continued at the live edge)"
    )
    print(
        f"check: {len(deliveries)} webhook deliveries ({len(events)} distinct event ids, "
        f"{bundled} carrying several surges of a story), {len(sent)} distinct surges received"
    )
    if repeated_events:
        problems.append(f"event ids delivered more than once: {list(repeated_events.items())[:10]}")
    if twice:
        problems.append(f"surges received more than once: {list(twice.items())[:10]}")
    if missing:
        problems.append(f"{len(missing)} surges never received, e.g. {missing[:10]}")
    if unlisted:
        problems.append(f"{len(unlisted)} received surges the gateway does not list: {unlisted[:10]}")
    if not_expected:
        problems.append(f"{len(not_expected)} received surges that should have been held back: {not_expected[:10]}")
    if not want:
        problems.append("no surge to deliver: the test proved nothing")
    for p in problems:
        print(f"check: FAIL: {p}")
    if problems:
        sys.exit(1)
    print("check: ok: every surge to be sent was received exactly once, nothing else was")


if __name__ == "__main__":
    main()
