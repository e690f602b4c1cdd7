#!/usr/bin/env python3
"""Scripted mock of the OpenAI Chat Completions API (+ minimal Responses API), loopback only.

POST .../chat/completions  streaming (SSE) and JSON
POST .../responses         streaming (SSE) function calls
GET  .../models            list with the script's model
anything else              200 {} (logged)

Script (chosen by the number of tool results already in the conversation, for
requests that offer tools): shell -> read -> write -> edit -> final text.
Tool names and argument names are picked adaptively from the tools offered
(opencode: bash/read/write/edit with filePath/oldString; openclaw: exec/read/
write/edit with path/oldText ...). Requests without tools get a short text.
Tool call ids: <prefix><step> (e.g. call_mock_0).
"""
import argparse, json, sys, time, threading, itertools, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=8766)
ap.add_argument("--log", default="chat_requests.jsonl")
ap.add_argument("--cwd", required=True, help="dir holding notes.txt")
ap.add_argument("--envdump", default="/tmp/shell_env.txt")
ap.add_argument("--prefix", default="call_mock_")
ap.add_argument("--model", default="mock-model")
ap.add_argument("--parallel", action="store_true", help="step 0 = two shell calls in one response, then final text")
args = ap.parse_args()
lock, ids = threading.Lock(), itertools.count(1)

BASH = ("echo MARKER_BASH pid=$$ ppid=$PPID; ps -o pid,ppid,pgid,sid,tty,comm -p $$,$PPID; "
        "readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2; "
        "grep -E '^(Seccomp|NoNewPrivs)' /proc/$$/status; "
        "tr '\\0' '\\n' < /proc/$$/environ > " + args.envdump + "; "
        "env | grep -E '^(OPENCODE|OPENCLAW|AGENT|OTEL_|TRACEPARENT|TRACESTATE|OPENAI|SHELL|PWD|TERM)' | sort; "
        "sleep 0.3; cat notes.txt")


def log(entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def tools_of(body):
    out = {}
    for t in body.get("tools") or []:
        f = t.get("function") or t
        n = f.get("name")
        if n:
            out[n] = (f.get("parameters") or f.get("input_schema") or {}).get("properties") or {}
    return out


def pick(props, *cands, default=None):
    for c in cands:
        if c in props:
            return c
    return default or cands[0]


def script_step(tools, step):
    d = args.cwd
    names = list(tools)
    def find(*c):
        for x in c:
            if x in tools:
                return x
        return None
    if step == 0:
        n = find("bash", "exec", "shell", "run_shell_command", "Bash")
        if n:
            p = tools[n]
            a = {pick(p, "command", "cmd"): BASH}
            if "description" in p: a["description"] = "Shows pid and env"
            if "workdir" in p: a["workdir"] = d
            return n, a
    if step == 1:
        n = find("read", "Read", "read_file")
        if n:
            p = tools[n]
            return n, {pick(p, "filePath", "file_path", "path"): os.path.join(d, "notes.txt")}
    if step == 2:
        n = find("write", "Write", "write_file")
        if n:
            p = tools[n]
            return n, {pick(p, "filePath", "file_path", "path"): os.path.join(d, "out.txt"),
                       "content": "written by mock\n"}
    if step == 3:
        n = find("edit", "Edit", "replace")
        if n:
            p = tools[n]
            fp = pick(p, "filePath", "file_path", "path")
            if "edits" in p and "oldText" not in p and "oldString" not in p:
                return n, {fp: os.path.join(d, "notes.txt"),
                           "edits": [{"oldText": "hello world", "newText": "hello edited world"}]}
            return n, {fp: os.path.join(d, "notes.txt"),
                       pick(p, "oldString", "old_string", "oldText"): "hello world",
                       pick(p, "newString", "new_string", "newText"): "hello edited world"}
    return None, None


def count_results_chat(msgs):
    return sum(1 for m in msgs or [] if isinstance(m, dict) and m.get("role") == "tool")


def count_results_resp(inp):
    return sum(1 for i in inp or [] if isinstance(i, dict) and i.get("type") == "function_call_output")


def usage():
    return {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def chat_reply(body):
    tools = tools_of(body)
    step = count_results_chat(body.get("messages"))
    name, a = script_step(tools, step) if tools else (None, None)
    cid = f"chatcmpl-mock-{next(ids)}"
    if args.parallel and tools:
        if step == 0 and name:
            p = tools[name]; k = pick(p, "command", "cmd")
            tcs = []
            for i, tag in enumerate(("A", "B")):
                a2 = dict(a); a2[k] = (f"echo PAR_{tag} pid=$$; tr '\\0' '\\n' < /proc/$$/environ > {args.envdump}.{tag}; "
                                       f"ps -o pid,ppid,pgid,sid,comm -p $$,$PPID; sleep 1; echo done_{tag}")
                tcs.append({"index": i, "id": f"{args.prefix}0{tag}", "type": "function",
                            "function": {"name": name, "arguments": json.dumps(a2)}})
            return cid, None, tcs, "tool_calls"
        return cid, "All done (mock).", None, "stop"
    if name:
        tc = {"index": 0, "id": f"{args.prefix}{step}", "type": "function",
              "function": {"name": name, "arguments": json.dumps(a)}}
        return cid, None, [tc], "tool_calls"
    text = "All done (mock)." if tools else "Mock title"
    return cid, text, None, "stop"


def chat_sse(body, cid, text, tcs, fin):
    model = body.get("model", args.model)
    base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    ev = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    if text:
        ev.append(dict(base, choices=[{"index": 0, "delta": {"content": text}, "finish_reason": None}]))
    if tcs:
        ev.append(dict(base, choices=[{"index": 0, "delta": {"tool_calls": tcs}, "finish_reason": None}]))
    ev.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": fin}]))
    ev.append(dict(base, choices=[], usage=usage()))
    return ("".join(f"data: {json.dumps(e)}\n\n" for e in ev) + "data: [DONE]\n\n").encode()


def chat_json(body, cid, text, tcs, fin):
    msg = {"role": "assistant", "content": text}
    if tcs:
        msg["tool_calls"] = [{k: v for k, v in t.items() if k != "index"} for t in tcs]
    return json.dumps({"id": cid, "object": "chat.completion", "created": int(time.time()),
                       "model": body.get("model", args.model),
                       "choices": [{"index": 0, "message": msg, "finish_reason": fin}], "usage": usage()}).encode()


def resp_sse(body):
    tools = tools_of(body)
    step = count_results_resp(body.get("input"))
    name, a = script_step(tools, step) if tools else (None, None)
    n = next(ids)
    if name:
        item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"{args.prefix}{step}", "name": name,
                "arguments": json.dumps(a), "status": "completed"}
    else:
        item = {"type": "message", "id": f"msg_{n}", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "All done (mock)." if tools else "Mock title", "annotations": []}]}
    rid = f"resp_mock_{n}"
    def robj(items, st):
        return {"id": rid, "object": "response", "created_at": int(time.time()), "status": st,
                "model": body.get("model", args.model), "output": items,
                "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                          "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 120}}
    ev = [("response.created", {"type": "response.created", "response": robj([], "in_progress")}),
          ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item})]
    if item["type"] == "message":
        ev.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": item["id"],
                                                  "output_index": 0, "content_index": 0, "delta": item["content"][0]["text"]}))
    ev.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}))
    ev.append(("response.completed", {"type": "response.completed", "response": robj([item], "completed")}))
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in ev).encode(), item


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, data, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except Exception:
            body = raw.decode("utf-8", "replace")
        entry = {"ts": time.time(), "method": self.command, "path": self.path,
                 "client": f"{self.client_address[0]}:{self.client_address[1]}",
                 "headers": dict(self.headers), "body": body}
        path = self.path.split("?")[0]
        if self.command == "POST" and path.endswith("/chat/completions") and isinstance(body, dict):
            cid, text, tcs, fin = chat_reply(body)
            entry["reply"] = {"text": text, "tool_calls": tcs, "finish": fin}
            if body.get("stream"):
                self._send(200, chat_sse(body, cid, text, tcs, fin), "text/event-stream")
            else:
                self._send(200, chat_json(body, cid, text, tcs, fin))
        elif self.command == "POST" and path.endswith("/responses") and isinstance(body, dict):
            data, item = resp_sse(body)
            entry["reply"] = item
            self._send(200, data, "text/event-stream")
        elif path.endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": args.model, "object": "model", "owned_by": "mock"}]}).encode())
        else:
            self._send(200, b"{}")
        log(entry)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, *a):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
    print(f"mock chat on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    srv.serve_forever()
