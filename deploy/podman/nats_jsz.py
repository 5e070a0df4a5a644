#!/usr/bin/env python3
"""Asks a NATS node's monitoring port (/jsz) about borderwatch's streams, for deploy/podman-test.sh.

  nats_jsz.py URL leader STREAM   the server name leading STREAM (empty when unknown)
  nats_jsz.py URL cluster         "<cluster size> <meta leader>" of the JetStream meta group
  nats_jsz.py URL backlog         one line per durable consumer: "<stream> <consumer>
                                  <pending> <ack pending> <redelivered>" (ephemeral ones,
                                  such as KV watchers, are left out)

URL is the monitoring base, e.g. http://127.0.0.1:28221 (loopback only).
"""
import json
import sys
import urllib.request


def jsz(base):
    url = f"{base}/jsz?accounts=true&streams=true&consumers=true&config=true"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def streams(doc):
    for account in doc.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            yield stream


def main():
    base, what = sys.argv[1], sys.argv[2]
    doc = jsz(base)
    if what == "leader":
        for s in streams(doc):
            if s.get("name") == sys.argv[3]:
                print((s.get("cluster") or {}).get("leader", ""))
    elif what == "cluster":
        meta = doc.get("meta_cluster") or {}
        print(meta.get("cluster_size", 0), meta.get("leader", ""))
    elif what == "backlog":
        for s in streams(doc):
            for c in s.get("consumer_detail") or []:
                if not (c.get("config") or {}).get("durable_name"):
                    continue
                print(
                    s.get("name"),
                    c.get("name"),
                    c.get("num_pending", 0),
                    c.get("num_ack_pending", 0),
                    c.get("num_redelivered", 0),
                )
    else:
        sys.exit(f"unknown question {what!r}")


if __name__ == "__main__":
    main()
