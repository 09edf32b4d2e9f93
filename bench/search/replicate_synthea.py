#!/usr/bin/env python3
"""Replicate the Synthea sample into NDJSON for the HTTP search benchmark (issue 3).

    bench/search/replicate_synthea.py --input ../shared/data/synthea-r4 --out DIR \\
        (--target-resources 2000000 | --copies N)

Reads the transaction Bundles of --input (sorted by file name) and writes
DIR/ndjson/<Type>.ndjson with N copies of every patient's resources (`jiceng import
DIR/ndjson`), plus DIR/picks.json (query values picked from the written data, for
bench/search/queries.tsv) and, last, DIR/summary.json (the completion marker: counts per type,
copies, and the hash of this script).

What each copy gets:
  * fresh ids: every UUID of a copy (resource ids, urn:uuid references, UUID identifier values
    such as the MRN) becomes uuid5(NAMESPACE, "<copy>:<original>"), so ids are a deterministic
    function of the copy number and the original id;
  * references rewritten: `urn:uuid:X` becomes `Type/<new id>` (the type of the Bundle entry
    whose fullUrl is `urn:uuid:X`); conditional references (`Organization?identifier=s|v`) are
    resolved to the resource carrying that identifier;
  * shifted patients: names drawn from weighted lists of Chinese family names and given names
    (so `name=王` matches ~7 % of residents, like a county register), SSN / driver's licence /
    passport numbers redrawn, and birthDate and every clinical date and dateTime shifted by the
    copy's number of days (copy 0: none; copy c: between 0 and 4 years back).
Organizations and Practitioners are shared: written ONCE (first occurrence, original id), and
every copy references them.

Output is deterministic: same input and arguments, same bytes. Python 3 standard library only.
"""

import argparse
import bisect
import datetime
import glob
import hashlib
import json
import math
import os
import re
import sys
import uuid

SHARED_TYPES = ("Organization", "Practitioner")
NAMESPACE = uuid.UUID("5b1c0d3e-7a41-4e55-9c3f-2f6a0e0b9a11")  # fixed: ids stay stable

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# One pass over a resource's compact JSON text finds every slot that changes per copy.
SLOT_RE = re.compile(
    r'(?P<ref>"reference":)?"urn:uuid:(?P<urn>' + UUID_RE + r')"'
    r'|"reference":"(?P<cond>[A-Z][A-Za-z]+\?[^"]*)"'
    r'|"(?P<uuid>' + UUID_RE + r')"'
    r'|"(?P<date>\d{4}-\d{2}-\d{2})(?P<time>T[^"]*)?"')

# Family names with weights (per mille, rounded, after national name statistics): the head of
# the distribution is what makes a name-prefix search realistic. The tail is uniform.
FAMILY_WEIGHTED = [
    ("王", 71), ("李", 70), ("张", 67), ("刘", 54), ("陈", 46), ("杨", 31), ("黄", 25), ("赵", 23),
    ("吴", 20), ("周", 19), ("徐", 17), ("孙", 15), ("马", 14), ("朱", 13), ("胡", 13), ("郭", 11),
    ("何", 11), ("林", 10), ("高", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("沈", 8), ("谢", 7),
    ("宋", 7), ("唐", 6), ("许", 6), ("韩", 6), ("冯", 6), ("邓", 6), ("曹", 5), ("彭", 5),
    ("曾", 5), ("肖", 5), ("钱", 5), ("顾", 5), ("陆", 5), ("田", 4), ("董", 4), ("袁", 4),
    ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4), ("余", 4), ("杜", 4), ("叶", 4), ("程", 4),
]
FAMILY_TAIL = list("苏魏吕丁任姚卢姜崔钟谭汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺"
                   "毛郝龚邵万覃武戴孔汤庞樊兰殷施费俞莫倪严褚")
FAMILY_TAIL_SHARE = 1000 - sum(w for _, w in FAMILY_WEIGHTED)
GIVEN_MALE = ["伟", "强", "军", "磊", "勇", "杰", "涛", "明", "超", "斌", "建国", "建华", "建平",
              "建明", "志强", "志明", "国平", "国强", "海", "波", "鹏", "辉", "刚", "平", "文",
              "华", "俊", "浩", "宇", "晨", "子豪", "浩然", "宇轩", "明辉", "德华", "永康", "春生",
              "金根", "水根", "福林", "荣", "健", "峰", "林", "鑫", "亮", "成", "兵", "卫东", "红兵"]
GIVEN_FEMALE = ["芳", "娜", "敏", "静", "丽", "艳", "燕", "霞", "娟", "英", "红", "玲", "秀英",
                "秀兰", "桂英", "玉兰", "丹", "萍", "雪", "琳", "婷", "慧", "佳", "颖", "晓燕",
                "晓红", "建英", "建芳", "美华", "美玲", "丽华", "丽娟", "金凤", "梅", "兰", "琴",
                "欣怡", "梓涵", "雨涵", "子涵", "思琪", "诗涵", "月英", "凤英", "彩霞", "小红",
                "海燕", "春梅", "淑珍", "素珍"]


def die(msg):
    print("replicate_synthea: " + msg, file=sys.stderr)
    sys.exit(1)


def stable_int(*parts):
    """A deterministic 64-bit integer of the parts (Python's hash() is salted per process)."""
    h = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def shift_days(copy):
    return 0 if copy == 0 else -(stable_int("shift", copy) % 1461)


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def identifier_keys(resource):
    for ident in resource.get("identifier", []) or []:
        if "value" in ident:
            yield "%s|%s" % (ident.get("system", ""), ident["value"])
            yield ident["value"]


class Source:
    """The input Bundles, with shared resources set apart and each resource compiled into a
    template: literal text between slots that change per copy."""

    def __init__(self, input_dir):
        files = sorted(glob.glob(os.path.join(input_dir, "*.json")))
        if not files:
            die("no *.json Bundles in %s" % input_dir)
        self.shared = []  # (type, compact text), first occurrence order
        self.shared_ids = set()
        shared_by_identifier = {}  # "Type?identifier=s|v" -> "Type/id"
        self.bundles = []  # per Bundle: list of (type, template | patient dict)
        raw = []
        for path in files:
            with open(path, encoding="utf-8") as f:
                bundle = json.load(f)
            if bundle.get("resourceType") != "Bundle":
                die("%s is not a Bundle" % path)
            raw.append((os.path.basename(path), bundle.get("entry", [])))
            for entry in bundle.get("entry", []):
                res = entry["resource"]
                rtype = res["resourceType"]
                if rtype in SHARED_TYPES:
                    rid = res.get("id") or (entry.get("fullUrl", "").rsplit(":", 1)[-1])
                    if rid not in self.shared_ids:
                        res = dict(res, id=rid)
                        self.shared_ids.add(rid)
                        self.shared.append((rtype, compact(res)))
                    for key in identifier_keys(res):
                        shared_by_identifier.setdefault("%s?identifier=%s" % (rtype, key),
                                                        "%s/%s" % (rtype, rid))
        self.shared_by_identifier = shared_by_identifier

        for name, entries in raw:
            urls = {}  # urn:uuid id -> type
            local_by_identifier = {}
            for entry in entries:
                res = entry["resource"]
                full = entry.get("fullUrl", "")
                if full.startswith("urn:uuid:"):
                    urls[full[9:]] = res["resourceType"]
                for key in identifier_keys(res):
                    local_by_identifier.setdefault(
                        "%s?identifier=%s" % (res["resourceType"], key),
                        (res["resourceType"], res.get("id", full[9:])))
            items = []
            for entry in entries:
                res = entry["resource"]
                rtype = res["resourceType"]
                if rtype in SHARED_TYPES:
                    continue
                if "id" not in res and entry.get("fullUrl", "").startswith("urn:uuid:"):
                    res = dict(res, id=entry["fullUrl"][9:])
                if rtype == "Patient":
                    items.append((rtype, res))  # rebuilt per copy (names, identifiers)
                else:
                    items.append((rtype, self.compile(compact(res), urls, local_by_identifier,
                                                      name)))
            self.bundles.append({"name": name, "items": items, "urls": urls,
                                 "local": local_by_identifier, "entries": entries})

    def compile(self, text, urls, local, where):
        """Splits text into literals and slots: ('u', uuid) a UUID string value, ('U', uuid)
        the UUID inside a urn:uuid: value, ('r', type, uuid) a reference, ('d', date,
        time-suffix) a date or dateTime."""
        parts = []
        pos = 0
        for m in SLOT_RE.finditer(text):
            parts.append(text[pos:m.start()])
            pos = m.end()
            if m.group("urn"):
                u = m.group("urn")
                if m.group("ref"):
                    rtype = urls.get(u)
                    if rtype is None:
                        die("%s: urn:uuid:%s is not a fullUrl of the Bundle" % (where, u))
                    parts.append('"reference":')
                    if u in self.shared_ids:
                        parts.append('"%s/%s"' % (rtype, u))
                    else:
                        parts.append(("r", rtype, u))
                else:
                    parts.append('"urn:uuid:')
                    parts.append(u if u in self.shared_ids else ("U", u))
                    parts.append('"')
            elif m.group("cond"):
                cond = m.group("cond")
                if cond in self.shared_by_identifier:
                    parts.append('"reference":"%s"' % self.shared_by_identifier[cond])
                elif cond in local:
                    rtype, rid = local[cond]
                    parts.append('"reference":')
                    parts.append(("r", rtype, rid))
                else:
                    die("%s: conditional reference %s does not resolve" % (where, cond))
            elif m.group("uuid"):
                u = m.group("uuid")
                parts.append('"%s"' % u if u in self.shared_ids else ("u", u))
            else:
                parts.append(("d", m.group("date"), m.group("time") or ""))
        parts.append(text[pos:])
        # Merge adjacent literals.
        merged = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            else:
                merged.append(p)
        return [p for p in merged if p != ""]


class Copy:
    """The per-copy functions: new UUIDs and shifted dates (memoised)."""

    def __init__(self, n, shared_ids):
        self.n = n
        self.shift = datetime.timedelta(days=shift_days(n))
        self.shared_ids = shared_ids
        self.ids = {}
        self.dates = {}

    def uuid(self, u):
        v = self.ids.get(u)
        if v is None:
            v = u if u in self.shared_ids else str(uuid.uuid5(NAMESPACE, "%d:%s" % (self.n, u)))
            self.ids[u] = v
        return v

    def date(self, d):
        v = self.dates.get(d)
        if v is None:
            v = (datetime.date.fromisoformat(d) + self.shift).isoformat()
            self.dates[d] = v
        return v

    def render(self, template):
        out = []
        for p in template:
            if isinstance(p, str):
                out.append(p)
            elif p[0] == "u":
                out.append('"%s"' % self.uuid(p[1]))
            elif p[0] == "U":
                out.append(self.uuid(p[1]))
            elif p[0] == "r":
                out.append('"%s/%s"' % (p[1], self.uuid(p[2])))
            else:
                out.append('"%s%s"' % (self.date(p[1]), p[2]))
        return "".join(out)


def pick_family(copy, rid):
    x = stable_int("family", copy, rid) % 1000
    acc = 0
    for fam, w in FAMILY_WEIGHTED:
        acc += w
        if x < acc:
            return fam
    return FAMILY_TAIL[stable_int("tail", copy, rid) % len(FAMILY_TAIL)]


def shifted_patient(res, copy):
    """The Patient of a copy: new name and redrawn national identifiers (UUIDs are slots)."""
    p = json.loads(compact(res))
    rid = p["id"]
    family = pick_family(copy, rid)
    pool = GIVEN_FEMALE if p.get("gender") == "female" else GIVEN_MALE
    given = pool[stable_int("given", copy, rid) % len(pool)]
    p["name"] = [{"use": "official", "text": family + given, "family": family, "given": [given]}]
    r = stable_int("ids", copy, rid)
    for ident in p.get("identifier", []):
        system = ident.get("system", "")
        if system.endswith("us-ssn"):
            ident["value"] = "999-%02d-%04d" % (r % 100, (r // 100) % 10000)
        elif system.startswith("urn:oid:2.16.840.1.113883.4.3"):
            ident["value"] = "S99%06d" % ((r // 10**6) % 10**6)
        elif "passport" in system.lower():
            ident["value"] = "X%08dX" % ((r // 10**12) % 10**8)
    return p


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


def coding_of(res, key="code"):
    codings = (res.get(key) or {}).get("coding") or [{}]
    return codings[0].get("system", ""), codings[0].get("code", "")


def categories(res):
    return {c.get("code") for cat in res.get("category", []) for c in cat.get("coding", [])}


def bundle_stats(entries, bp_code):
    """Counts of one patient's Bundle (the same in every copy)."""
    st = {"bp": 0, "vitals": 0, "active": 0, "codes": {}, "deceased": False,
          "MedicationRequest": 0, "Encounter": 0, "DiagnosticReport": 0}
    for entry in entries:
        res = entry["resource"]
        rt = res["resourceType"]
        if rt in st:
            st[rt] += 1
        if rt == "Patient":
            st["deceased"] = any(k.startswith("deceased") and v is not False
                                 for k, v in res.items())
        elif rt == "Condition":
            key = "%s|%s" % coding_of(res)
            st["codes"][key] = st["codes"].get(key, 0) + 1
            st["active"] += coding_of(res, "clinicalStatus")[1] == "active"
        elif rt == "Observation":
            st["bp"] += coding_of(res)[1] == bp_code
            st["vitals"] += "vital-signs" in categories(res)
    return st


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="directory of Synthea transaction Bundles")
    ap.add_argument("--out", required=True, help="output directory (created)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--target-resources", type=int, help="pick N copies to reach at least this")
    g.add_argument("--copies", type=int, help="number of copies N")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    src = Source(args.input)
    per_copy = sum(len(b["items"]) for b in src.bundles)
    if args.copies is not None:
        copies = args.copies
    else:
        copies = max(1, math.ceil((args.target_resources - len(src.shared)) / per_copy))
    if copies < 1:
        die("--copies must be at least 1")
    total = len(src.shared) + copies * per_copy

    ndjson_dir = os.path.join(args.out, "ndjson")
    os.makedirs(ndjson_dir, exist_ok=True)
    summary_path = os.path.join(args.out, "summary.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)
    for old in glob.glob(os.path.join(ndjson_dir, "*.ndjson")):
        os.remove(old)
    files = {}

    def write(rtype, line):
        f = files.get(rtype)
        if f is None:
            f = files[rtype] = open(os.path.join(ndjson_dir, rtype + ".ndjson"), "w",
                                    encoding="utf-8", newline="\n")
            counts[rtype] = 0
        f.write(line)
        f.write("\n")
        counts[rtype] += 1

    counts = {}
    for rtype, text in src.shared:
        write(rtype, text)

    # --- picks, part 1: from the originals (codes and values are the same in every copy) ---
    bp_code = "55284-4"  # LOINC Blood pressure panel (Synthea 2019); 85354-9 in newer exports
    cond_codes, active_codes, glucose, bmi = {}, {}, [], []
    stats = [bundle_stats(b["entries"], bp_code) for b in src.bundles]
    max_lab_date = ""
    for b in src.bundles:
        for entry in b["entries"]:
            res = entry["resource"]
            rt = res["resourceType"]
            if rt == "Condition":
                key = "%s|%s" % coding_of(res)
                cond_codes[key] = cond_codes.get(key, 0) + 1
                if coding_of(res, "clinicalStatus")[1] == "active":
                    active_codes[key] = active_codes.get(key, 0) + 1
            elif rt == "Observation":
                code = coding_of(res)[1]
                value = (res.get("valueQuantity") or {}).get("value")
                if code == "2339-0" and value is not None:
                    glucose.append(value)
                elif code == "39156-5" and value is not None:
                    bmi.append(value)
                if "laboratory" in categories(res):
                    max_lab_date = max(max_lab_date, res.get("effectiveDateTime", "")[:10])
    if not cond_codes or not active_codes or not glucose or not bmi:
        die("the input lacks Conditions, active Conditions, glucose or BMI values")
    # The patient of the single-patient queries: the living patient with the most BP panels
    # (ties: first file name), in the middle copy.
    living_bp = [0 if st["deceased"] else st["bp"] for st in stats]
    if not max(living_bp):
        die("no living patient has BP panels")
    pick_bundle = living_bp.index(max(living_bp))
    pick_copy = copies // 2

    patients = []  # (bundle index, name parts, birthDate) of every written Patient
    picked = {}
    for c in range(copies):
        cp = Copy(c, src.shared_ids)
        for bi, b in enumerate(src.bundles):
            for rtype, item in b["items"]:
                if rtype == "Patient":
                    p = shifted_patient(item, c)
                    line = cp.render(src.compile(compact(p), b["urls"], b["local"], b["name"]))
                    written = json.loads(line)
                    n = written["name"][0]
                    patients.append((bi, [n["text"], n["family"]] + n["given"],
                                     written.get("birthDate", "")))
                    if c == pick_copy and bi == pick_bundle:
                        picked["patient"] = written
                else:
                    line = cp.render(item)
                    if c == pick_copy and bi == pick_bundle and rtype == "Observation":
                        obs = json.loads(line)
                        if coding_of(obs)[1] == bp_code:
                            picked.setdefault("bp_dates", []).append(obs["effectiveDateTime"])
                write(rtype, line)
        if not args.quiet:
            print("\rreplicate_synthea: copy %d/%d, %d resources" %
                  (c + 1, copies, sum(counts.values())), end="", file=sys.stderr, flush=True)
    if not args.quiet:
        print(file=sys.stderr)
    for f in files.values():
        f.close()

    # --- picks, part 2: from the written copies ---
    patient = picked["patient"]
    mrn = next(i for i in patient["identifier"]
               if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding", [])))
    last_bp = max(d[:10] for d in picked["bp_dates"])
    since = (datetime.date.fromisoformat(last_bp) - datetime.timedelta(days=365)).isoformat()
    name = patient["name"][0]
    families = {}
    for _, parts, _ in patients:
        families[parts[1]] = families.get(parts[1], 0) + 1
    top_family = max(sorted(families), key=lambda k: families[k])
    narrow = name["family"] + name["given"][0][0]
    condition_code = max(sorted(cond_codes), key=lambda k: cond_codes[k])
    active_code = max(sorted(active_codes), key=lambda k: active_codes[k])
    birthdate_before = "1960-01-01"
    pst = stats[pick_bundle]

    def named(prefix):  # the string search's default: some part of the name starts with it
        return [bi for bi, parts, _ in patients if any(x.startswith(prefix) for x in parts)]

    # Expected totals of the queries of queries.tsv, counted here from what was written (not by
    # asking the server). Value-range and date-window queries have none (their edges follow the
    # search specification's precision rules; the differential test covers those).
    expect = {
        "patient-bp-last-year": sum(1 for d in picked["bp_dates"] if d[:10] >= since),
        "patient-by-mrn": 1,
        "patient-vitals-compartment": pst["vitals"],
        "patient-active-conditions": pst["active"],
        "patient-medications": pst["MedicationRequest"],
        "patient-encounters-recent": pst["Encounter"],
        "patient-reports-include": pst["DiagnosticReport"],
        "patient-revinclude": 1,
        "residents-name-prefix": len(named(top_family)),
        "residents-name-prefix-narrow": len(named(narrow)),
        "conditions-by-code": cond_codes[condition_code] * copies,
        "conditions-by-code-sorted": cond_codes[active_code] * copies,
        "residents-revinclude-conditions": len(named(top_family)),
        "chain-subject-name": sum(stats[bi]["bp"] for bi in named(top_family)),
        "chain-subject-typed-birthdate": sum(stats[bi]["codes"].get(active_code, 0)
                                             for bi, _, born in patients
                                             if born and born < birthdate_before),
        "has-condition": sum(1 for bi, _, _ in patients if stats[bi]["codes"].get(active_code)),
    }
    picks = {
        "patient_id": patient["id"],
        "patient_mrn": "%s|%s" % (mrn["system"], mrn["value"]),
        "patient_family": name["family"],
        "patient_name_prefix": narrow,
        "patient_bp_count": len(picked["bp_dates"]),
        "patient_bp_since": since,
        "bp_code": "http://loinc.org|" + bp_code,
        "top_family": top_family,
        "top_family_share": round(families[top_family] / len(patients), 4),
        "condition_code": condition_code,
        "active_condition_code": active_code,
        "glucose_code": "http://loinc.org|2339-0",
        "glucose_low": round(percentile(glucose, 0.5)),
        "glucose_high": round(percentile(glucose, 0.9)),
        "bmi_code": "http://loinc.org|39156-5",
        "bmi_min": 30,
        "lab_since": (datetime.date.fromisoformat(max_lab_date) -
                      datetime.timedelta(days=365)).isoformat(),
        "birthdate_before": birthdate_before,
        "expect": expect,
    }
    with open(os.path.join(args.out, "picks.json"), "w", encoding="utf-8") as f:
        json.dump(picks, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.abspath(__file__), "rb") as f:
        script_hash = hashlib.sha256(f.read()).hexdigest()
    summary = {
        "copies": copies,
        "resources": sum(counts.values()),
        "shared": len(src.shared),
        "per_copy": per_copy,
        "by_type": dict(sorted(counts.items())),
        "target_resources": args.target_resources,
        "script_sha256": script_hash,
    }
    assert summary["resources"] == total
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    if not args.quiet:
        print("replicate_synthea: %d copies, %d resources (%d shared) in %s" %
              (copies, total, len(src.shared), args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
