package darwin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// Lost kinds the source reports besides session.go's (vigil.lost).
const (
	// lostDecode counts lines that could not be decoded (not JSON, a field of the wrong type, an
	// event that contradicts its event_type, a line past maxLine).
	lostDecode = "decode"
	// lostUnmapped counts events of agent processes of a kind Vigil does not map.
	lostUnmapped = "unmapped"
	// lostTrackFull counts processes not followed because the tree filter was full.
	lostTrackFull = "track_full"
)

// maxLine bounds one eslogger line. exec lines carry argv, the environment and a stat per
// file, and run to tens of kilobytes; Datadog's eslogger reader allows 8 MiB.
const maxLine = 8 << 20

// Options configure the source.
type Options struct {
	Catalog *sensor.Catalog
	Log     zerolog.Logger
}

// Source is the EndpointSecurity source: it reads eslogger's lines, follows agent trees in
// user space and emits the lines of their processes.
type Source struct {
	log     zerolog.Logger
	streams streams
	tracker *tree.Tracker
	started sensor.Started
	schema  schemaWatch

	lost counts
	// full mirrors tracker.Full for Lost, which runs on another goroutine.
	full atomic.Uint64
	// warned counts decode failures logged at warn level; later ones go to debug.
	warned   int
	unmapped map[string]bool
}

// streams hands the source one stream of eslogger lines after another: a capture file once, or
// each run of a supervised eslogger.
type streams interface {
	// next returns the next stream, and whether it starts with its ES client's first message;
	// io.EOF when there is none left (the capture is read, or ctx is done).
	next(ctx context.Context) (io.ReadCloser, bool, error)
	close() error
}

// maxWarnings bounds the decode failures logged at warn level: a stream of bad lines must not
// flood the log (they are all counted).
const maxWarnings = 10

func newSource(opts Options, s streams, installed []sensor.ExeIdentity, started sensor.Started) *Source {
	src := &Source{
		log:      opts.Log,
		streams:  s,
		tracker:  tree.New(tree.Options{Catalog: opts.Catalog, Installed: installed}),
		started:  started,
		schema:   schemaWatch{log: opts.Log},
		unmapped: map[string]bool{},
	}
	src.lost.m = map[string]uint64{}
	return src
}

// Name implements sensor.Source.
func (s *Source) Name() string { return SourceName }

// Started implements sensor.Source.
func (s *Source) Started() sensor.Started { return s.started }

// Lost implements sensor.Source: decode failures, ES drops from sequence gaps per kind,
// eslogger restarts, schema changes, unmapped events of agent processes, and a full tracker.
func (s *Source) Lost() map[string]uint64 {
	lost := s.lost.snapshot()
	if n := s.full.Load(); n > 0 {
		lost[lostTrackFull] = n
	}
	return lost
}

// Close implements sensor.Source: it stops eslogger or closes the capture.
func (s *Source) Close() error { return s.streams.close() }

// Run implements sensor.Source: it reads stream after stream until there is none left (a
// capture ends, or ctx is cancelled and eslogger stopped).
func (s *Source) Run(ctx context.Context, emit func(*proto.Event)) error {
	for {
		r, fresh, err := s.streams.next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		err = s.consume(ctx, r, fresh, emit)
		if cerr := r.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close eslogger stream: %w", cerr)
		}
		if err != nil {
			return err
		}
	}
}

// consume reads one stream to its end, or until ctx is done.
func (s *Source) consume(ctx context.Context, r io.Reader, fresh bool, emit func(*proto.Event)) error {
	sess := newSession(s.log, fresh, s.lost.add)
	defer sess.end()
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for ctx.Err() == nil {
		line, err := readLine(br, buf[:0], maxLine)
		if cap(line) <= 1<<20 { // after a huge line, let its buffer go
			buf = line[:0]
		} else {
			buf = nil
		}
		switch {
		case errors.Is(err, errLongLine):
			s.decodeFailed(err, len(line))
			sess.unreadable(nil)
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("read eslogger output: %w", err)
		}
		if len(line) > 0 {
			s.handle(line, sess, emit)
		}
		if err != nil { // io.EOF
			return nil
		}
	}
	return nil
}

// handle decodes one line, runs it through the tree filter and emits its line when its process
// is in an agent tree.
func (s *Source) handle(line []byte, sess *session, emit func(*proto.Event)) {
	m, err := parseMessage(line)
	if err != nil {
		s.decodeFailed(err, len(line))
		sess.unreadable(line)
		return
	}
	sess.observe(m)
	if s.schema.observe(m) {
		s.lost.add(lostSchemaChange, 1)
	}
	member, body, ok, err := s.follow(m)
	s.full.Store(s.tracker.Full())
	if err != nil {
		s.decodeFailed(err, len(line))
		return
	}
	if !ok {
		return
	}
	e, err := lineOf(m, body, member)
	if err != nil {
		s.decodeFailed(err, len(line))
		return
	}
	if e != nil {
		emit(e)
	}
}

// follow runs m through the tree filter: exec, fork and exit change the trees; any other
// event is kept when its process is in one, and only then is its body decoded (most events
// on a Mac are not an agent's).
func (s *Source) follow(m *message) (tree.Member, any, bool, error) {
	switch m.kind {
	case "exec", "fork", "exit":
		body, err := m.decode()
		if err != nil {
			return tree.Member{}, nil, false, err
		}
		var member tree.Member
		var ok bool
		switch b := body.(type) {
		case *execBody:
			member, ok = s.tracker.Exec(procOf(&b.Target), imageOf(b), b.Args)
		case *forkBody:
			member, ok = s.tracker.Fork(procOf(m.Process), procOf(&b.Child))
		default:
			member, ok = s.tracker.Exit(procOf(m.Process))
		}
		return member, body, ok, nil
	}
	member, ok := s.tracker.Lookup(procOf(m.Process))
	if !ok {
		return tree.Member{}, nil, false, nil
	}
	body, err := m.decode()
	if errors.Is(err, errUnsupported) {
		s.unmappedEvent(m.kind)
		return tree.Member{}, nil, false, nil
	}
	return member, body, err == nil, err
}

// imageOf is what the tree filter judges an exec by: the path execve was given, the file the
// kernel ran and its identity.
func imageOf(b *execBody) tree.Image {
	img := tree.Image{Filename: b.DyldExecPath, Size: -1}
	exe := b.Target.Executable
	if !exe.PathTruncated { // a cut path's name is not the file's
		img.Path = exe.Path
	}
	if st := exe.Stat; st != nil {
		img.Dev, img.Ino, img.Size = devOf(st), st.Ino, st.Size
	}
	return img
}

func (s *Source) decodeFailed(err error, n int) {
	s.lost.add(lostDecode, 1)
	ev := s.log.Debug()
	if s.warned < maxWarnings {
		s.warned++
		ev = s.log.Warn()
	}
	// The error names the field, never the line: it may hold argv or environment values.
	ev.Err(err).Int("bytes", n).Msg("undecodable eslogger line, counted as lost kind decode")
}

// maxUnmappedNames bounds the distinct event names logged: they come from the input.
const maxUnmappedNames = 16

func (s *Source) unmappedEvent(kind string) {
	s.lost.add(lostUnmapped, 1)
	if s.unmapped[kind] || len(s.unmapped) >= maxUnmappedNames {
		return
	}
	s.unmapped[kind] = true
	if len(kind) > 64 {
		kind = kind[:64]
	}
	s.log.Warn().Str("event", kind).Msg("eslogger event of an agent process that Vigil does not map, counted as lost kind unmapped")
}

// counts are cumulative loss counters per kind, added to by Run's goroutine and read by Lost.
type counts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counts) add(kind string, n uint64) {
	c.mu.Lock()
	c.m[kind] += n
	c.mu.Unlock()
}

func (c *counts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m)+1)
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
