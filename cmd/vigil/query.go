package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/store"
)

// maxCellRunes bounds a cell of the table format; the json and csv formats write values whole.
const maxCellRunes = 100

// queryCommand is `vigil query`: one read-only SQL statement over the store `vigil run`
// writes, or over JSONL files loaded into a store in memory.
func queryCommand(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return runQuery(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// jsonlFlags collect the --jsonl files in order.
type jsonlFlags []string

func (f *jsonlFlags) String() string { return strings.Join(*f, ",") }

func (f *jsonlFlags) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// runQuery runs the query of args and writes its rows to out; in is what --jsonl - reads,
// errOut gets the usage and the lines --jsonl skipped.
func runQuery(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(errOut)
	dbPath := fs.String("db", "", "the store to read (default: output.store of --config, or of "+defaultConfigPath+" when it exists, or of the embedded defaults)")
	configPath := fs.String("config", "", "read output.store from this configuration")
	var jsonlPaths jsonlFlags
	fs.Var(&jsonlPaths, "jsonl", "load this JSONL file (- for stdin) into a store in memory and query that instead;\n"+
		"repeatable: rotated files oldest first (PATH.2, PATH.1, PATH), then untrusted.jsonl and floods.jsonl")
	format := fs.String("format", "table", "output format: table (values cut at "+strconv.Itoa(maxCellRunes)+" characters), json (an array of objects) or csv")
	fs.Usage = func() {
		fmt.Fprint(errOut, `Usage: vigil query [--db PATH | --jsonl FILE ...] [--format table|json|csv] SQL

Runs one read-only SQL statement (SQLite) on the store vigil run writes: tables events (a
view), sessions, prompts, tool_calls, alerts, runs (docs/schema.md, "Store"). Statements that
would write (INSERT, UPDATE, DELETE, CREATE, ATTACH, a pragma that sets a value) are refused.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	query := strings.TrimSpace(strings.Join(fs.Args(), " "))
	switch {
	case query == "":
		fs.Usage()
		return usageError{errors.New("query: no SQL statement given")}
	case *format != "table" && *format != "json" && *format != "csv":
		return usageError{fmt.Errorf("query: --format %q: want table, json or csv", *format)}
	case *dbPath != "" && len(jsonlPaths) > 0, *configPath != "" && len(jsonlPaths) > 0:
		return usageError{errors.New("query: --jsonl reads the files given, not a store: leave out --db and --config")}
	}

	var r *store.Reader
	var err error
	if len(jsonlPaths) > 0 {
		r, err = loadJSONL(jsonlPaths, in, errOut)
	} else {
		path := *dbPath
		if path == "" {
			if path, err = configuredStore(*configPath); err != nil {
				return err
			}
		}
		r, err = store.OpenReadOnly(path)
	}
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer r.Close()
	rows, err := r.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	bw := bufio.NewWriter(out)
	switch *format {
	case "json":
		err = writeJSONRows(bw, rows)
	case "csv":
		err = writeCSVRows(bw, rows)
	default:
		err = writeTableRows(bw, rows)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

// configuredStore is output.store of the configuration vigil run would use: path, else
// /etc/vigil/vigil.yaml when it exists, else the embedded defaults.
func configuredStore(path string) (string, error) {
	cfg, _, err := loadConfig(path, "")
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	if cfg.Output.Store == "" {
		return "", errors.New("query: output.store is \"\" (the store is off): give --db PATH or --jsonl FILE")
	}
	return cfg.Output.Store, nil
}

// loadJSONL loads the files into a store in memory, through the sink's own code, and returns
// a Reader on it. Lines that do not decode are skipped and reported on errOut.
func loadJSONL(paths []string, in io.Reader, errOut io.Writer) (*store.Reader, error) {
	s, err := store.Open(store.Options{Path: store.Memory})
	if err != nil {
		return nil, err
	}
	for _, path := range paths {
		res, err := loadFile(s, path, in)
		if err != nil {
			return nil, errors.Join(err, s.Close())
		}
		if res.Malformed > 0 {
			fmt.Fprintf(errOut, "vigil query: skipped %d malformed %s of %d in %s (first: line %d: %v)\n",
				res.Malformed, map[bool]string{true: "line", false: "lines"}[res.Malformed == 1], res.Lines, path, res.FirstMalformed, res.FirstErr)
		}
	}
	return s.Reader()
}

func loadFile(s *store.Store, path string, in io.Reader) (store.LoadResult, error) {
	if path == "-" {
		return s.Load(in)
	}
	f, err := os.Open(path)
	if err != nil {
		return store.LoadResult{}, err
	}
	defer f.Close()
	res, err := s.Load(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// scanRows calls each with every row's values.
func scanRows(rows *sql.Rows, each func([]any) error) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := each(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// valueText is a value as text: NULL is "", a blob that is not UTF-8 is hex.
func valueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return `x'` + hex.EncodeToString(v) + `'`
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return map[bool]string{true: "1", false: "0"}[v]
	case time.Time:
		return v.UTC().Format(proto.TimeLayout)
	}
	return fmt.Sprint(v)
}

// writeTableRows writes aligned columns for a person to read: each value on one line, its
// control characters escaped (they come from what agents ran: a path can hold an escape
// sequence aimed at the analyst's terminal) and cut at maxCellRunes.
func writeTableRows(w io.Writer, rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	table := [][]string{make([]string, len(cols))}
	for i, c := range cols {
		table[0][i] = cellText(c)
	}
	if err := scanRows(rows, func(vals []any) error {
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = cellText(valueText(v))
		}
		table = append(table, row)
		return nil
	}); err != nil {
		return err
	}
	widths := make([]int, len(cols))
	for _, row := range table {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	rule := make([]string, len(cols))
	for i, n := range widths {
		rule[i] = strings.Repeat("-", n)
	}
	table = append(table[:1], append([][]string{rule}, table[1:]...)...)
	for _, row := range table {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c)
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(line.String(), " ")); err != nil {
			return err
		}
	}
	n := len(table) - 2
	_, err = fmt.Fprintf(w, "(%d %s)\n", n, map[bool]string{true: "row", false: "rows"}[n == 1])
	return err
}

// cellText is s on one line with control characters and invalid UTF-8 escaped, cut at
// maxCellRunes.
func cellText(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return clip(b.String(), maxCellRunes)
}

// writeJSONRows writes an array of objects, one per row, keys in column order. A column name
// that repeats (a join's two id columns) gets a suffix: id, id_2.
func writeJSONRows(w io.Writer, rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	keys := make([][]byte, len(cols))
	seen := map[string]int{}
	for i, c := range cols {
		seen[c]++
		if seen[c] > 1 {
			c = c + "_" + strconv.Itoa(seen[c])
		}
		if keys[i], err = jsonText(c); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	n := 0
	err = scanRows(rows, func(vals []any) error {
		var b []byte
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  {"...)
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, keys[i]...)
			b = append(b, ':')
			jv, err := jsonText(jsonValue(v))
			if err != nil {
				return err
			}
			b = append(b, jv...)
		}
		b = append(b, '}')
		n++
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "]\n"
	if n > 0 {
		end = "\n]\n"
	}
	_, err = io.WriteString(w, end)
	return err
}

// jsonText encodes v without escaping <, > and & (commands are full of &&).
func jsonText(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonValue is v as JSON writes it: numbers as numbers, NULL as null, text as a string.
func jsonValue(v any) any {
	switch v := v.(type) {
	case nil, int64, float64, bool:
		return v
	}
	return valueText(v)
}

// writeCSVRows writes a header and the rows (RFC 4180); NULL is an empty field.
func writeCSVRows(w io.Writer, rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	record := make([]string, len(cols))
	if err := scanRows(rows, func(vals []any) error {
		for i, v := range vals {
			record[i] = valueText(v)
		}
		return cw.Write(record)
	}); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
