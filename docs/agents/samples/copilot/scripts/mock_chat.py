#!/usr/bin/env python3
"""Scripted mock of the OpenAI Chat Completions API (and a Responses fallback) for Copilot CLI BYOK.
POST */chat/completions -> SSE (stream) or JSON.  GET */models -> list.  anything else -> 200 {} (logged).
Script (--script JSON list): step k (k = number of assistant messages with tool_calls already in the
request) is a list of [tool_name, args] pairs (one parallel batch) or the string "final".
Requests that offer no tools get a short text. Tool call ids: <prefix><step>_<i>.
"""
import argparse, json, sys, time, threading, itertools
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=8768)
ap.add_argument("--log", default="api_requests.jsonl")
ap.add_argument("--script", default=None)
ap.add_argument("--id-prefix", default="call_mock_")
args = ap.parse_args()
SCRIPT = json.load(open(args.script)) if args.script else ["final"]
lock, ids = threading.Lock(), itertools.count(1)

def log(e):
    with lock, open(args.log, "a") as f: f.write(json.dumps(e) + "\n")

def plan(body):
    msgs = body.get("messages") or []
    step = sum(1 for m in msgs if m.get("role") == "assistant" and m.get("tool_calls"))
    tools = [ (t.get("function") or {}).get("name") or t.get("name") for t in (body.get("tools") or [])]
    if not tools or step >= len(SCRIPT) or SCRIPT[step] == "final":
        return None, step
    calls = []
    for i, (name, a) in enumerate(SCRIPT[step]):
        calls.append({"id": f"{args.id_prefix}{step}_{i}", "type": "function",
                      "function": {"name": name, "arguments": json.dumps(a)}})
    return calls, step

def chunks(body, calls, text):
    cid = f"chatcmpl-mock-{next(ids)}"; model = body.get("model", "mock"); t = int(time.time())
    base = {"id": cid, "object": "chat.completion.chunk", "created": t, "model": model}
    out = []
    if calls:
        out.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
            {"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for i, c in enumerate(calls)]}, "finish_reason": None}]})
        fin = "tool_calls"
    else:
        out.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]})
        fin = "stop"
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": fin}]})
    out.append({**base, "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
    return cid, out

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _send(self, code, data, ctype="application/json"):
        self.send_response(code); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try: body = json.loads(raw) if raw else None
        except Exception: body = raw.decode("utf-8", "replace")
        e = {"ts": time.time(), "method": self.command, "path": self.path,
             "client": f"{self.client_address[0]}:{self.client_address[1]}", "headers": dict(self.headers), "body": body}
        p = self.path.split("?")[0]
        if self.command == "POST" and p.endswith("/chat/completions") and isinstance(body, dict):
            calls, step = plan(body)
            text = "All done (mock copilot)." if body.get("tools") else "Mock title"
            e["reply"] = calls or text; e["step"] = step
            cid, out = chunks(body, calls, text)
            if body.get("stream"):
                data = "".join(f"data: {json.dumps(c)}\n\n" for c in out) + "data: [DONE]\n\n"
                self._send(200, data.encode(), "text/event-stream")
            else:
                msg = {"role": "assistant", "content": None if calls else text}
                if calls: msg["tool_calls"] = calls
                self._send(200, json.dumps({"id": cid, "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                    "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}).encode())
        elif p.endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": []}).encode())
        else:
            self._send(200, b"{}")
        log(e)
    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle
    def log_message(self, *a): pass

if __name__ == "__main__":
    print(f"mock chat on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), H).serve_forever()
