// opencode plugin: dump every hook call (input, output, pid, env subset) to $HOOK_DUMP_DIR, one file per call.
// With INJECT_ENV=1 the shell.env hook also injects the call id into the tool shell's env.
import fs from "fs";
import path from "path";
const dir = process.env.HOOK_DUMP_DIR || "/tmp/oc-hooks";
fs.mkdirSync(dir, { recursive: true });
let n = 0;
function safe(v) { try { return JSON.parse(JSON.stringify(v, (k, x) => (typeof x === "function" ? "[fn]" : x))); } catch (e) { return String(v); } }
function dump(name, input, output) {
  const envSub = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(OPENCODE|AGENT|OTEL|TRACE)/.test(k)));
  const rec = { ts: Date.now() / 1000, hook: name, pid: process.pid, ppid: process.ppid, input: safe(input), output: safe(output), env: envSub };
  fs.writeFileSync(path.join(dir, `${String(++n).padStart(3, "0")}_${name.replace(/[^a-z.]/gi, "_")}.json`), JSON.stringify(rec, null, 1));
}
export const VigilDump = async (ctx) => {
  dump("plugin.init", { directory: ctx.directory, worktree: ctx.worktree, project: ctx.project, serverUrl: String(ctx.serverUrl || "") }, {});
  const hooks = {};
  for (const h of ["chat.message", "chat.params", "chat.headers", "permission.ask", "tool.execute.before", "tool.execute.after", "command.execute.before", "experimental.chat.system.transform", "tool.definition"]) {
    hooks[h] = async (input, output) => { dump(h, input, h === "experimental.chat.system.transform" ? { system: "[trimmed]" } : output); };
  }
  hooks["shell.env"] = async (input, output) => {
    if (process.env.INJECT_ENV === "1") {
      output.env.VIGIL_TOOL_CALL_ID = input.callID || "";
      output.env.VIGIL_SESSION_ID = input.sessionID || "";
    }
    dump("shell.env", input, output);
  };
  hooks.event = async ({ event }) => { dump("event." + event.type, event, {}); };
  return hooks;
};
