#!/usr/bin/env python3
"""Reads borderwatch's JSON logs (BORDERWATCH_LOG_FORMAT=json) on stdin for deploy/podman-test.sh.

  role_logs.py health-addr           the address "health probes served" names (the last one)
  role_logs.py in-hand RELEASE       parts of RELEASE begun ("analysing release part") and
                                     not finished ("release analysed"), one per line
  role_logs.py analysed RELEASE      parts of RELEASE finished, one per line (each once)
  role_logs.py redelivered RELEASE   parts of RELEASE finished on a redelivery (delivered > 1)

A part is named `<source>/<part number>`; every line of stdin that is not JSON is skipped.
"""
import json
import sys


def lines():
    for raw in sys.stdin:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            yield line.get("fields", {})


def main():
    what = sys.argv[1]
    release = sys.argv[2] if len(sys.argv) > 2 else None
    begun, finished, redelivered, addr = [], [], [], None
    for f in lines():
        message = f.get("message")
        if message == "health probes served":
            addr = f.get("addr")
        elif f.get("release") == release and message == "analysing release part":
            begun.append(f"{f.get('source')}/{f.get('part')}")
        elif f.get("release") == release and message == "release analysed":
            part = f"{f.get('source')}/{f.get('part')}"
            finished.append(part)
            if (f.get("delivered") or 0) > 1:
                redelivered.append(part)
    if what == "health-addr":
        out = [addr] if addr else []
    elif what == "in-hand":
        out = [p for p in set(begun) if begun.count(p) > finished.count(p)]
    elif what == "analysed":
        out = set(finished)
    elif what == "redelivered":
        out = set(redelivered)
    else:
        sys.exit(f"unknown question {what!r}")
    for item in sorted(out, key=str):
        print(item)


if __name__ == "__main__":
    main()
