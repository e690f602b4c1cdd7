// Vigil's plugin for opencode (https://opencode.ai/docs/plugins). opencode's telemetry names
// each tool call on its spans, but it does not export the last batch of spans at exit and its
// shells carry no key (docs/agents/opencode.md). This plugin closes both gaps:
//   - tool.execute.before / tool.execute.after report the call (its id, session, tool and
//     arguments) to the Vigil sensor through `vigil hook --agent opencode`, as a
//     PreToolUse / PostToolUse payload, before the tool runs and when it ends;
//   - shell.env puts the call's id (VIGIL_TOOL_CALL_ID) and the session (VIGIL_SESSION_ID)
//     in the environment of the call's shell, so the kernel's exec events of the shell and of
//     everything it starts carry them.
// It never changes what a tool does, and a sensor that is down costs one failed spawn.
// Install: copy it into ~/.config/opencode/plugin/ (or a project's .opencode/plugin/), or
// name it in opencode.json's "plugin" list. VIGIL_BIN overrides the vigil executable,
// VIGIL_HOOK_SOCKET and VIGIL_HOOK_UNDELIVERED its --socket and --undelivered-dir.
import { spawn } from "node:child_process";

const vigil = process.env.VIGIL_BIN || "vigil";
const hookArgs = ["hook", "--agent", "opencode"];
if (process.env.VIGIL_HOOK_SOCKET) hookArgs.push("--socket", process.env.VIGIL_HOOK_SOCKET);
if (process.env.VIGIL_HOOK_UNDELIVERED) hookArgs.push("--undelivered-dir", process.env.VIGIL_HOOK_UNDELIVERED);

// report hands one hook payload to `vigil hook` on its stdin and waits for it to exit (it
// always exits 0, within milliseconds, and writes nothing).
function report(payload) {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(vigil, hookArgs, { stdio: ["pipe", "ignore", "ignore"] });
    } catch {
      resolve();
      return;
    }
    child.on("error", () => resolve());
    child.on("close", () => resolve());
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(payload));
  });
}

export const Vigil = async ({ directory }) => ({
  "tool.execute.before": async (input, output) => {
    await report({
      hook_event_name: "PreToolUse", session_id: input.sessionID, tool_use_id: input.callID,
      tool_name: input.tool, tool_input: output.args, cwd: directory,
    });
  },
  "tool.execute.after": async (input, output) => {
    await report({
      hook_event_name: "PostToolUse", session_id: input.sessionID, tool_use_id: input.callID,
      tool_name: input.tool, tool_input: input.args, cwd: directory,
      tool_response: { exit_code: output?.metadata?.exit ?? null },
    });
  },
  "shell.env": async (input, output) => {
    if (input.callID) output.env.VIGIL_TOOL_CALL_ID = input.callID;
    if (input.sessionID) output.env.VIGIL_SESSION_ID = input.sessionID;
  },
});
