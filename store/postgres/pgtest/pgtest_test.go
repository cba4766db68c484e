package pgtest

import "testing"

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"postgres://u:p@h:5432/main?sslmode=disable", "postgres://u:p@h:5432/t1?sslmode=disable"},
		{"postgresql://h/main_db", "postgresql://h/t1"},
		{"postgres://u@h:5432?sslmode=disable", "postgres://u@h:5432/t1?sslmode=disable"},
		{"postgres://h", "postgres://h/t1"},
		{"host=/tmp port=5 user=postgres dbname=postgres", "host=/tmp port=5 user=postgres dbname=postgres dbname=t1"},
	} {
		if got, err := withDatabase(c.dsn, "t1"); err != nil || got != c.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", c.dsn, got, err, c.want)
		}
	}
}
