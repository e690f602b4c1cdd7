#!/usr/bin/env python3
"""Extract the required attributes Vigil's OCSF encoder must write from an ocsf-schema checkout.

Usage: extract.py GIT_DIR REV > required.json   (REV: the release tag, e.g. 1.8.0)

For each event class: the required attributes of the class, its category class and base_event
(extends chain, own attributes overriding inherited ones), with the attributes of the profiles
the encoder applies; for each object the encoder writes: its required attributes (extends
chain) and its constraints. Types are the dictionary's (is_array noted as "[]").
"""
import json, subprocess, sys

git, rev = sys.argv[1], sys.argv[2]

def show(path):
    return json.loads(subprocess.check_output(["git", "-C", git, "show", f"{rev}:{path}"]))

def ls(prefix):
    out = subprocess.check_output(["git", "-C", git, "ls-tree", "-r", "--name-only", rev, prefix])
    return [p for p in out.decode().split() if p.endswith(".json")]

dictionary = show("dictionary.json")["attributes"]
categories = show("categories.json")["attributes"]
events = {d["name"]: (p, d) for p in ls("events/") for d in [show(p)]}
objects = {d["name"]: d for p in ls("objects/") for d in [show(p)]}

def own(d, profiles):
    """The attributes d declares, with those of its includes (a profile's only when applied)."""
    attrs = {}
    for inc in d.get("attributes", {}).get("$include", []):
        i = show(inc)
        if i.get("meta") == "profile" and i["name"] not in profiles:
            continue
        for k, v in i["attributes"].items():
            attrs[k] = {**attrs.get(k, {}), **v}
    for k, v in d.get("attributes", {}).items():
        if k != "$include":
            attrs[k] = {**attrs.get(k, {}), **v}
    return attrs

def resolve(d, lookup, profiles):
    chain = []
    while d is not None:
        chain.append(d)
        parent = d.get("extends")
        d = lookup(parent) if parent else None
    attrs, constraints = {}, {}
    for d in reversed(chain):
        for k, v in own(d, profiles).items():
            merged = {**attrs.get(k, {}), **v}
            if "enum" in attrs.get(k, {}) and "enum" in v:
                merged["enum"] = {**attrs[k]["enum"], **v["enum"]}  # a class adds to its parent's list
            attrs[k] = merged
        if d.get("constraints"):
            constraints = d["constraints"]
    return attrs, constraints

def typ(name, a):
    t = a.get("type") or dictionary[name]["type"]
    arr = a.get("is_array", dictionary[name].get("is_array", False))
    return t + ("[]" if arr else "")

def enum(a, name):
    e = a.get("enum") or dictionary.get(name, {}).get("enum") or {}
    return sorted(int(i) for i in e)

out = {"schema": f"ocsf-schema {rev}", "commit": subprocess.check_output(
    ["git", "-C", git, "rev-parse", rev + "^{commit}"]).decode().strip(), "classes": {}, "objects": {}}

CLASSES = {"process_activity": ["host", "ai_operation"], "file_activity": ["host"],
           "network_activity": ["host"], "detection_finding": ["host"], "base_event": ["host"]}
for name, profiles in CLASSES.items():
    path, d = events[name]
    attrs, _ = resolve(d, lambda n: events[n][1], profiles)
    cat = d.get("category") or events[d["extends"]][1].get("category")
    cat_uid = categories[cat]["uid"] if cat in categories else 0
    class_uid = cat_uid * 1000 + d.get("uid", 0)
    out["classes"][str(class_uid)] = {
        "name": name, "file": path, "category_uid": cat_uid, "profiles": profiles,
        "required": {k: typ(k, a) for k, a in sorted(attrs.items()) if a.get("requirement") == "required"},
        "activity_id": enum(attrs["activity_id"], "activity_id"),
        "severity_id": enum(attrs["severity_id"], "severity_id"),
        "status_id": enum(attrs.get("status_id", {}), "status_id"),
    }

OBJECTS = ["analytic", "metadata", "product", "device", "actor", "process", "file", "fingerprint", "user", "group",
           "network_endpoint", "network_connection_info", "finding_info", "message_context", "application"]
for name in OBJECTS:
    attrs, constraints = resolve(objects[name], lambda n: objects[n], [])
    out["objects"][name] = {
        "required": {k: typ(k, a) for k, a in sorted(attrs.items()) if a.get("requirement") == "required"},
        "constraints": constraints,
    }
json.dump(out, sys.stdout, indent=2, sort_keys=True)
print()
