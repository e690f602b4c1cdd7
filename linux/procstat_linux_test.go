package linux

import "testing"

func TestParseProcStat(t *testing.T) {
	// A zombie whose comm holds blanks and parentheses, as /proc writes it (52 fields).
	line := "4242 (a) b (c) Z 1 4242 4242 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 768\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "a) b (c" || st.state != 'Z' || st.start != 12345*nsPerClockTick || st.exitCode != 768 {
		t.Fatalf("%+v", st)
	}
	for _, bad := range []string{"", "4242 no comm", "4242 (x) S 1 2", "4242 (x) S " + "1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 x"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
