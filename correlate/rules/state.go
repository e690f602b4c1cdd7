package rules

// What the detector remembers between lines: the tool calls, sessions and prompts it has seen,
// each with the aggregates that tool_call and session rules read.

// Aggregates: bounded lists of distinct values, each value remembered with the event.sequence
// of the line that first added it (the alert's vigil.alert.sequences).
const (
	aggSecretsRead = iota
	aggEgress
	aggFilesWritten
	aggExecutables
	aggCommands
	// Tool call only: what the call's subtree did that its declared input does not name
	// (declared.go).
	aggUndeclaredSecretsRead
	aggUndeclaredEgress
	// Session only: what processes of the session did that no tool call explains.
	aggUnexplainedSecretsRead
	aggUnexplainedEgress
	nAgg
)

// callAggs and sessionAggs are the aggregates each scope keeps, as bits.
const (
	sharedAggs  = 1<<aggSecretsRead | 1<<aggEgress | 1<<aggFilesWritten | 1<<aggExecutables | 1<<aggCommands
	callAggs    = sharedAggs | 1<<aggUndeclaredSecretsRead | 1<<aggUndeclaredEgress
	sessionAggs = sharedAggs | 1<<aggUnexplainedSecretsRead | 1<<aggUnexplainedEgress
)

// depMeta is the dependency bit of a rule that reads a scalar of its scope (tool.decision,
// session.cwd): it is evaluated again when those change.
const depMeta = 1 << nAgg

// aggFields names the aggregates in CEL, and aggLabels in evidence.
var (
	aggFields = [nAgg]string{"secrets_read", "egress", "files_written", "executables", "commands",
		"undeclared_secrets_read", "undeclared_egress", "unexplained_secrets_read", "unexplained_egress"}
	aggLabels = [nAgg]string{"read", "connect", "write", "exec", "exec",
		"read (not in the call's input)", "connect (not in the call's input)", "read (no tool call)", "connect (no tool call)"}
)

// maxAggValues bounds each aggregate list: a build that writes ten thousand objects keeps the
// first 256, so a rule's cost per evaluation stays bounded. Values past it are counted
// (Stats.AggregateCapped), not kept.
const maxAggValues = 256

// aggList is a bounded list of distinct values.
type aggList struct {
	values []string
	seqs   []uint64
	index  map[string]struct{}
}

// add adds v first seen on line seq; false when v was there already or the list is full.
func (l *aggList) add(v string, seq uint64) (added, capped bool) {
	if _, ok := l.index[v]; ok {
		return false, false
	}
	if len(l.values) >= maxAggValues {
		return false, true
	}
	if l.index == nil {
		l.index = map[string]struct{}{}
	}
	l.index[v] = struct{}{}
	l.values = append(l.values, v)
	l.seqs = append(l.seqs, seq)
	return true, false
}

// seqOf returns the sequence of the line that added v.
func (l *aggList) seqOf(v string) (uint64, bool) {
	for i, x := range l.values {
		if x == v {
			return l.seqs[i], true
		}
	}
	return 0, false
}

// callState is one tool call: what its agent.tool_call line said, once it arrived, and what
// the kernel lines bound to it did.
type callState struct {
	id, name, session, prompt, agent string
	command                          string
	filePaths                        []string
	decision, decisionSource         string
	outcome                          string
	// reported: the call's agent.tool_call line was seen (its decision is final).
	reported bool
	// seq is the sequence of the agent.tool_call line.
	seq  uint64
	root rootRef
	agg  [nAgg]aggList
	// effects are who read each of secrets_read and who reached each of egress, for judging
	// them against the declaration once the call is reported.
	effects map[effectKey]effect
	// declared is the call's declaration, once reported.
	declared *declaration
	// fired are the tool_call rules that already raised an alert for this call.
	fired map[string]bool
}

// effectKey is one value of one aggregate.
type effectKey struct {
	agg   int
	value string
}

// effect is what the kernel said about the line that added a value to secrets_read or egress.
type effect struct {
	// program is the reader's or connecting process's program (Program, scripts resolved).
	program string
	// ip is the destination address of an egress.
	ip string
	// byAgent: the agent process itself (the tree's root) did it, not the call's subtree: a
	// file tool's own read is its declared input by construction.
	byAgent bool
}

// approvedDecisions and autoSources decide tool.approved: accepted, by a person. Claude
// reports accept/reject with source config, hook, user_temporary, user_permanent…; Codex
// approved/denied with Config or User.
var (
	approvedDecisions = map[string]bool{"accept": true, "approved": true, "approved_for_session": true, "allow": true}
	autoSources       = map[string]bool{"": true, "config": true, "Config": true, "auto": true}
)

// approved reports whether a person approved the call (not a configuration rule, not nobody).
func (c *callState) approved() bool {
	return approvedDecisions[c.decision] && !autoSources[c.decisionSource]
}

// rootRef is the agent process at the top of a tree (vigil.root).
type rootRef struct {
	pid      int
	entityID string
}

// sessionState is one agent session.
type sessionState struct {
	id, agent string
	// cwd is the agent's working directory (its session line's, else its prompt line's): the
	// repository the session works in, as far as the sensor knows.
	cwd    string
	root   rootRef
	prompt string // the latest prompt's id
	agg    [nAgg]aggList
	fired  map[string]bool
}

// promptState is one user prompt.
type promptState struct {
	id, text string
}
