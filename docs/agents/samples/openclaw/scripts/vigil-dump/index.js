// OpenClaw plugin: dump typed plugin hook events (event, ctx) with pid to $HOOK_DUMP_DIR, one file per call.
// INJECT_ENV=1: resolve_exec_env contributes VIGIL_* vars to the exec tool's env.
import fs from "node:fs";
import path from "node:path";
import * as diag from "openclaw/plugin-sdk/diagnostic-runtime";
const dir = process.env.HOOK_DUMP_DIR || "/tmp/oclaw-hooks";
let n = 0;
function safe(v, d = 0) {
  if (d > 6) return "[deep]";
  if (v === null || v === undefined) return v;
  if (typeof v === "function") return "[fn]";
  if (typeof v === "string") return v.length > 2000 ? v.slice(0, 2000) + "…" : v;
  if (typeof v !== "object") return v;
  if (v instanceof AbortSignal) return "[AbortSignal]";
  if (Array.isArray(v)) return v.slice(0, 30).map((x) => safe(x, d + 1));
  const o = {};
  for (const [k, x] of Object.entries(v)) o[k] = safe(x, d + 1);
  return o;
}
function dump(name, event, ctx) {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(OPENCLAW|OTEL|TRACE)/.test(k)));
    fs.writeFileSync(path.join(dir, `${String(++n).padStart(3, "0")}_${name}.json`),
      JSON.stringify({ ts: Date.now() / 1000, hook: name, pid: process.pid, ppid: process.ppid, event: safe(event), ctx: safe(ctx), env }, null, 1));
  } catch (e) { }
}
const HOOKS = ["before_model_resolve", "before_prompt_build", "before_agent_start", "llm_input", "llm_output", "agent_end",
  "before_tool_call", "after_tool_call", "tool_result_persist", "session_start", "session_end", "message_received",
  "before_agent_reply", "gateway_start", "gateway_stop", "subagent_spawned", "before_compaction", "after_compaction"];
export default {
  id: "vigil-dump",
  name: "Vigil hook dump",
  description: "dump hook payloads",
  register(api) {
    dump("register", { pluginConfig: api.pluginConfig, diagExports: Object.keys(diag) }, {});
    const djl = path.join(dir, "diagnostic_events.jsonl");
    const wr = (src) => (ev, meta) => { try { fs.mkdirSync(dir, { recursive: true }); fs.appendFileSync(djl, JSON.stringify({ src, ts: Date.now() / 1000, ev: safe(ev), meta: safe(meta) }) + "\n"); } catch (e) { } };
    try { diag.onDiagnosticEvent(wr("public")); } catch (e) { dump("diag_public_error", { error: String(e) }, {}); }
    try { diag.onInternalDiagnosticEvent(wr("internal")); } catch (e) { dump("diag_internal_error", { error: String(e) }, {}); }
    for (const h of HOOKS) {
      try {
        if (h === "tool_result_persist") api.on(h, (event, ctx) => { dump(h, event, ctx); return undefined; });
        else if (h === "before_tool_call") api.on(h, async (event, ctx) => {
          dump(h, event, ctx);
          if (process.env.INJECT_ENV === "1" && event.toolName === "exec")
            return { params: { ...event.params, env: { ...(event.params?.env || {}), VIGIL_TOOL_CALL_ID: String(event.toolCallId || ""), VIGIL_RUN_ID: String(event.runId || "") } } };
          return undefined;
        });
        else api.on(h, async (event, ctx) => { dump(h, event, ctx); return undefined; });
      } catch (e) { dump("register_error_" + h, { error: String(e) }, {}); }
    }
    api.on("resolve_exec_env", async (event, ctx) => {
      dump("resolve_exec_env", event, ctx);
      if (process.env.INJECT_ENV === "1") return { VIGIL_SESSION_KEY: String(event.sessionKey || ""), VIGIL_SESSION_ID: String(ctx?.sessionId || "") };
      return undefined;
    });
  },
};
