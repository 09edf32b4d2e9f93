"""The FHIR requests of the PostgreSQL drills (pg-replica-drill.sh, pg-pitr-drill.sh), which run
their Python with PYTHONPATH=scripts."""
import json
import urllib.error
import urllib.request


def call(base, method, path, body=None, headers=None):
    """One request to base + path with a JSON body: (status, the JSON answer or {}, its
    headers). An HTTP error status is returned, not raised."""
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/fhir+json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)
