package protocol_test

import (
	"bytes"
	"testing"

	"gearmand/protocol"
)

func TestFields(t *testing.T) {
	tests := []struct {
		line   string
		want   []string
		wantOK bool
	}{
		{"status", []string{"status"}, true},
		{"", []string{""}, true},
		{"maxqueue foo 1 2 3", []string{"maxqueue", "foo", "1", "2", "3"}, true},
		{"maxqueue foo 1 2 3 4", nil, false},
		{"a b c d e f g", nil, false},
		{"cancel   job    H:vm:1", []string{"cancel", "job", "H:vm:1"}, true},
		{" status", []string{"", "status"}, true},
		{"   status", []string{"", "status"}, true},
		{"status   ", []string{"status"}, true},
		{"a b c d e   ", []string{"a", "b", "c", "d", "e"}, true},
		{" a b c d", []string{"", "a", "b", "c", "d"}, true},
		{" a b c d e", nil, false},
		{"show\tjobs", []string{"show\tjobs"}, true},
		{"show \tjobs", []string{"show", "\tjobs"}, true},
		{"a\r b", []string{"a\r", "b"}, true},
		{" ", []string{""}, true},
		{"x\x00y z", []string{"x\x00y", "z"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			line := []byte(tt.line)
			got, ok := protocol.Fields(line, nil)
			if ok != tt.wantOK {
				t.Fatalf("Fields(%q) ok = %v, want %v (tokens %q)", tt.line, ok, tt.wantOK, got)
			}
			if !ok {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Fields(%q) = %q, want %q", tt.line, got, tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], []byte(tt.want[i])) {
					t.Errorf("token %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestFieldsReusesDstAndProtectsTheLine(t *testing.T) {
	line := []byte("cancel job H:vm:1")
	dst := make([][]byte, 0, protocol.MaxAdminTokens)
	tokens, ok := protocol.Fields(line, dst)
	if !ok || len(tokens) != 3 {
		t.Fatalf("Fields = %q, %v", tokens, ok)
	}
	if &tokens[0] != &dst[:1][0] {
		t.Error("Fields did not reuse dst")
	}
	_ = append(tokens[0], 'X')
	if string(line) != "cancel job H:vm:1" {
		t.Errorf("appending to a token changed the line to %q", line)
	}
}
