package protocol_test

import (
	"bytes"
	"testing"

	"gearmand/protocol"
)

// fieldsModel splits an admin line by the rule of PROTOCOL.md §3.1 in the
// plainest way: at every space, then dropping the empty pieces that runs of
// spaces and trailing spaces leave, except the first (a leading space makes
// the first token empty).
func fieldsModel(line []byte) [][]byte {
	var tokens [][]byte
	for i, piece := range bytes.Split(line, []byte(" ")) {
		if i == 0 || len(piece) > 0 {
			tokens = append(tokens, piece)
		}
	}
	return tokens
}

// FuzzFields checks Fields against fieldsModel on any line: the same
// tokens, ok exactly when there are at most MaxAdminTokens, and tokens that
// cannot be appended to over the line.
func FuzzFields(f *testing.F) {
	for _, s := range []string{
		"status", "", " ", "maxqueue foo 1 2 3", "maxqueue foo 1 2 3 4", "cancel   job    H:vm:1",
		" status", "status   ", " a b c d e", "show\tjobs", "a\r b", "x\x00y z", "     ", "a  b  c  d  e  ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		want := fieldsModel(line)
		got, ok := protocol.Fields(line, make([][]byte, 0, 2))
		if ok != (len(want) <= protocol.MaxAdminTokens) {
			t.Fatalf("Fields(%q) ok = %v with %d tokens", line, ok, len(want))
		}
		if !bytes.Equal(line, orig) {
			t.Fatalf("Fields changed the line %q to %q", orig, line)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("Fields(%q) = %q, want %q", line, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("Fields(%q) token %d = %q, want %q", line, i, got[i], want[i])
			}
			if cap(got[i]) != len(got[i]) {
				t.Fatalf("Fields(%q) token %d has room to grow over the line", line, i)
			}
		}
	})
}
