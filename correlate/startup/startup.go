// Package startup tells a process's start-up reads from what it was asked to do. Every
// program a tool call runs first has the dynamic loader open its shared libraries, libc open
// its locale data, and, for a shell, the shell read its rc, profile or the agent's shell
// snapshot. They are not effects of the command, and a trace that lists them one per line (a
// plain Read/Write/Edit session of Claude Code: 873 files "not explained") hides what the
// command did.
//
// The classification is defined from the order of the kernel lines of one process, not from a
// list of this machine's paths: the loader's reads are the shared objects (by their file kind,
// *.so and *.so.N) and its cache opened read-only between an exec and the process's first
// other open; a shell's are its read-only opens between its exec and its first fork, exec or
// connect. Only the locale kind is by name alone (a locale or gconv directory, locale-archive,
// locale.alias), because setlocale() and iconv may run at any point of a process's life.
//
// A kind is a reading aid, not a trust decision: the shell's window also holds whatever the
// command itself reads with builtins before it first forks (`. ./.env`, `read x < file`), and
// anyone can name a directory "locale". A consumer must decide secret reads before folding
// (vigil trace never folds a secret read), and must not exempt a line from a rule because it
// has a kind.
package startup

import (
	"container/list"
	"path"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// Kind is what made a start-up read; "" is not a start-up read.
type Kind string

// Kinds of start-up reads.
const (
	// Loader is the dynamic loader mapping the program's shared libraries.
	Loader Kind = "loader"
	// Locale is locale and character-set conversion data (setlocale, iconv).
	Locale Kind = "locale"
	// Shell is a shell reading its start-up files (rc, profile, the agent's snapshot) before
	// it runs anything.
	Shell Kind = "shell"
)

// Kinds lists the kinds in the order a reader is shown them.
var Kinds = []Kind{Loader, Locale, Shell}

// DefaultMaxProcesses is the bound New uses when given none.
const DefaultMaxProcesses = 4096

// kernelDataset is event.dataset of the sensor's kernel lines.
const kernelDataset = "vigil.kernel"

// Tracker follows the processes of kernel lines seen in write order (the order vigil run writes
// them, which is the kernel's order for one process) and classifies each open. It remembers at
// most a bounded number of processes, least recently seen forgotten first; a forgotten
// process's later opens are classified as those of a process whose exec was never seen (only
// Locale). Not safe for concurrent use.
type Tracker struct {
	max     int
	order   *list.List // of *entry; front: most recently seen
	entries map[string]*list.Element
	evicted uint64
}

type entry struct {
	entityID string
	proc
}

// proc is what is known of one process since its exec.
type proc struct {
	// loading: no open other than the loader's since the exec.
	loading bool
	// shell: a shell that has not forked, exec'd or connected since its exec.
	shell bool
}

// Stats counts the tracker's memory.
type Stats struct {
	// Processes is how many processes are remembered now.
	Processes int
	// Evicted counts processes forgotten to stay within the bound, before their exit: their
	// later loader and shell reads were not recognised.
	Evicted uint64
}

// New returns a tracker remembering at most maxProcesses processes (0 or less:
// DefaultMaxProcesses). A process is remembered from its exec to its exit.
func New(maxProcesses int) *Tracker {
	if maxProcesses <= 0 {
		maxProcesses = DefaultMaxProcesses
	}
	return &Tracker{max: maxProcesses, order: list.New(), entries: map[string]*list.Element{}}
}

// Stats reports the tracker's memory and what it forgot.
func (t *Tracker) Stats() Stats {
	return Stats{Processes: t.order.Len(), Evicted: t.evicted}
}

// Observe takes the next line in write order and returns the kind of start-up read it is, or
// "" for every line that is not one: lines other than kernel opens, opens that can write, and
// opens outside the windows described in the package comment. Failed opens are classified like
// successful ones: the loader and libc probe paths that do not exist (glibc-hwcaps, C.UTF-8
// before C.utf8).
func (t *Tracker) Observe(e *proto.Event) Kind {
	if e == nil || e.Event.Dataset != kernelDataset || e.Process == nil {
		return ""
	}
	id := e.Process.EntityID
	failed := e.Event.Outcome == proto.OutcomeFailure
	switch e.Event.Action {
	case proto.ActionExec:
		// A failed exec leaves the old image running.
		if !failed && id != "" {
			t.put(id, proc{loading: true, shell: isShell(e.Process.Executable, e.Process.Args)})
		}
	case proto.ActionFork:
		// The line is the child's; the parent forked.
		if par := e.Process.Parent; par != nil {
			if p := t.get(par.EntityID); p != nil {
				p.shell = false
			}
		}
	case proto.ActionConnect, proto.ActionSend:
		if p := t.get(id); p != nil {
			p.shell = false
		}
	case proto.ActionExit:
		t.remove(id)
	case proto.ActionOpen:
		if e.File == nil {
			return ""
		}
		return t.open(t.get(id), e.File)
	}
	return ""
}

// open classifies one open of the process p (nil: not remembered).
func (t *Tracker) open(p *proc, f *proto.File) Kind {
	ro := readOnly(f)
	if p != nil && p.loading {
		if ro && loaderFile(f.Path) {
			return Loader
		}
		p.loading = false
	}
	switch {
	case !ro:
		return ""
	case localeFile(f.Path):
		return Locale
	case p != nil && p.shell:
		return Shell
	}
	return ""
}

// readOnly: an open that reads and cannot change the file (O_PATH opens read nothing).
func readOnly(f *proto.File) bool {
	return f.Access == "read" && !strings.Contains(f.Flags, "O_CREAT") && !strings.Contains(f.Flags, "O_TRUNC")
}

// loaderFile: a shared object by its file kind (libc.so.6, libtinfo.so.6.4, ld-linux-x86-64.so.2,
// libfoo.so), or the loader's cache and preload list (/etc/ld.so.cache, /etc/ld.so.preload).
func loaderFile(p string) bool {
	base := path.Base(p)
	if base == "ld.so.cache" || base == "ld.so.preload" {
		return true
	}
	i := strings.LastIndex(base, ".so")
	if i <= 0 {
		return false
	}
	version := base[i+len(".so"):]
	if version == "" {
		return true
	}
	if version[0] != '.' || len(version) == 1 {
		return false
	}
	for _, c := range version[1:] {
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// localeFile: locale or gconv data: a file in a directory named locale or gconv
// (/usr/lib/locale/C.utf8/LC_CTYPE, /usr/share/locale/de/LC_MESSAGES/bash.mo,
// …/gconv/gconv-modules.cache), or the locale archive and alias list wherever they are.
func localeFile(p string) bool {
	dir, base := path.Split(p)
	if base == "locale-archive" || base == "locale.alias" {
		return true
	}
	for c := range strings.SplitSeq(dir, "/") {
		if c == "locale" || c == "gconv" {
			return true
		}
	}
	return false
}

// shells are the programs whose start-up reads are their rc and profile files.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "fish": true}

// isShell reports whether an exec runs a shell as its program, exactly as rules.Program names
// programs (the options it takes for inline code or standard input included): a shell given
// inline code (-c), its standard input or nothing, but not a shell running a script file
// (`bash build.sh` runs build.sh, and reading it is the command). The rules package cannot be
// imported here, since its detector uses this one; TestShellIsProgram holds the two together.
func isShell(executable string, args []string) bool {
	base := path.Base(executable)
	if executable == "" {
		if len(args) == 0 {
			return false
		}
		base = path.Base(args[0])
	}
	if !shells[base] {
		return false
	}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-e" || a == "-" || a == "-m" || a == "-s":
			return true
		case strings.HasPrefix(a, "-"):
		default:
			return false
		}
	}
	return true
}

func (t *Tracker) get(id string) *proc {
	if id == "" {
		return nil
	}
	el, ok := t.entries[id]
	if !ok {
		return nil
	}
	t.order.MoveToFront(el)
	return &el.Value.(*entry).proc
}

func (t *Tracker) put(id string, p proc) {
	if el, ok := t.entries[id]; ok {
		el.Value.(*entry).proc = p
		t.order.MoveToFront(el)
		return
	}
	if t.order.Len() >= t.max {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.entries, oldest.Value.(*entry).entityID)
		t.evicted++
	}
	t.entries[id] = t.order.PushFront(&entry{entityID: id, proc: p})
}

func (t *Tracker) remove(id string) {
	if el, ok := t.entries[id]; ok {
		t.order.Remove(el)
		delete(t.entries, id)
	}
}
