package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// reference is encoding/json's spelling of s without HTML escaping, what Append must match.
func reference(t testing.TB, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func check(t testing.TB, s string) {
	t.Helper()
	want := reference(t, s)
	if got := Append([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Errorf("Append(%q) = %s, want x%s", s, got, want)
	}
	if got := Append(nil, []byte(s)); !bytes.Equal(got, want) {
		t.Errorf("Append([]byte %q) = %s, want %s", s, got, want)
	}
}

func TestAppend(t *testing.T) {
	for _, s := range []string{
		"", "plain", "/home/dev/.env", "eight ch", "a longer plain string past eight bytes",
		`quote " and backslash \`, "tab\tnewline\nreturn\r", "\x00\x01\x1f\x7f",
		"<html> & stays", "é unicode ✓ 🙂", "bad \xff utf-8 \xc3", "\u2028line\u2029sep",
		"12345678\"12345678", "1234567\x00", "\xe2\x80", // a cut multi-byte rune at the end
	} {
		check(t, s)
	}
}

// Every string is written as encoding/json writes it.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\xff\u2028", "é✓🙂", "12345678\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}
