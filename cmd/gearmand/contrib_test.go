package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"gearmand/internal/testdep"
	"gearmand/server"
)

// The files in contrib/ are checked against the real option parser, so
// that they cannot drift from the options.

const (
	sampleConfig = "../../contrib/gearmand.conf"
	systemdUnit  = "../../contrib/gearmand.service"
)

// notInSampleConfig are the options the sample config leaves out: those
// that make no sense in a config file, and those accepted only for
// gearmand's command lines, which have a better spelling.
var notInSampleConfig = map[string]string{
	"help":                    "not in a config file",
	"version":                 "not in a config file",
	"config-file":             "not in a config file",
	"check-args":              "not in a config file: the server would only check and exit",
	"hand-back":               "a one-time command, not in a config file",
	"backlog":                 "accepted and ignored",
	"threads":                 "accepted and ignored",
	"round-robin":             "accepted and ignored",
	"hashtable-buckets":       "accepted and ignored",
	"coredump":                "accepted and ignored",
	"libpq-conninfo":          "gearmand's spelling of --dsn",
	"libpq-table":             "C gearmand's table, taken over at start; its default is right",
	"store-queue-on-shutdown": "accepted and ignored",
	"redis-import-functions":  "needed only once, when the log asks for it",
	"libdrizzle-host":         "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-port":         "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-uds":          "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-user":         "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-password":     "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-db":           "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-table":        "gearmand 0.x's spelling of --mysql-*",
	"libdrizzle-mysql":        "gearmand 0.x's spelling of --mysql-*",
	"redis-server":            "gearmand's spelling of --redis-addr",
	"redis-port":              "gearmand's spelling of --redis-addr",
	"redis-prefix":            "gearmand's spelling of --store-namespace",
}

func TestSampleConfig(t *testing.T) {
	text, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"--config-file", sampleConfig}, env())
	if err != nil {
		t.Fatalf("the sample config does not parse: %v", err)
	}
	if o.queueType != "bolt" || !o.keepAlive.Enable || o.level != server.LevelWarning || o.shutdownTimeout != 30*time.Second {
		t.Errorf("the sample config's active options: queue %s, keepalive %v, level %s, shutdown timeout %v",
			o.queueType, o.keepAlive.Enable, server.LevelName(o.level), o.shutdownTimeout)
	}

	// Every example parses on its own.
	mentioned := map[string]bool{}
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		example, ok := strings.CutPrefix(line, "#--")
		if !ok {
			if strings.HasPrefix(line, "--") {
				example = line[2:]
			} else {
				continue
			}
		}
		example = "--" + example
		for _, word := range strings.Fields(example) {
			if name, ok := strings.CutPrefix(word, "--"); ok {
				name, _, _ = strings.Cut(name, "=")
				mentioned[name] = true
			}
		}
		if _, err := parseOptions([]string{"--config-file", writeConfig(t, example)}, env()); err != nil {
			t.Errorf("example %q: %v", example, err)
		}
	}

	// Every option a user may want is shown.
	fs, _ := newFlagSet()
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || mentioned[f.Name] || notInSampleConfig[f.Name] != "" {
			return
		}
		t.Errorf("--%s is not in %s: add an example, or list it in notInSampleConfig with the reason", f.Name, sampleConfig)
	})
}

// unitSettings reads the [Service] settings of a systemd unit, the last
// value of each key.
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			settings[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

func TestSystemdUnit(t *testing.T) {
	unit := unitSettings(t, systemdUnit)
	execStart := strings.Fields(unit["ExecStart"])
	if len(execStart) == 0 || filepath.Base(execStart[0]) != "gearmand" {
		t.Fatalf("ExecStart=%q does not run gearmand", unit["ExecStart"])
	}
	o, err := parseOptions(append(execStart[1:], "--config-file", writeConfig(t, "")), env())
	if err != nil {
		t.Fatalf("ExecStart's options do not parse: %v", err)
	}
	state := "/var/lib/" + unit["StateDirectory"]
	if o.storeDriver != "bolt" || filepath.Dir(o.store.Path) != state {
		t.Errorf("ExecStart's store is %s %s, want the bolt file in StateDirectory %s", o.storeDriver, o.store.Path, state)
	}
	if filepath.Dir(o.pidFile) != "/run/"+unit["RuntimeDirectory"] {
		t.Errorf("ExecStart's pid file %s is not in RuntimeDirectory %s", o.pidFile, unit["RuntimeDirectory"])
	}
	if o.daemon {
		t.Error("ExecStart daemonizes, but the unit is Type=" + unit["Type"])
	}
	// systemd's SIGKILL must not cut the graceful stop short.
	stop, err := time.ParseDuration(unit["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", unit["TimeoutStopSec"], err)
	}
	sample, err := parseOptions([]string{"--config-file", sampleConfig}, env())
	if err != nil {
		t.Fatal(err)
	}
	if limit := max(o.shutdownTimeout, sample.shutdownTimeout) + server.FinalFlushTimeout; stop <= limit {
		t.Errorf("TimeoutStopSec=%v is not above --shutdown-timeout plus the final flush, %v", stop, limit)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, its
// ExecStart pointed at a freshly built binary.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testdep.Need(t, "systemd-analyze", "systemd")
	if testing.Short() {
		t.Skip("builds the binary")
	}
	text, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	exe := strings.Fields(unitSettings(t, systemdUnit)["ExecStart"])[0]
	unit := filepath.Join(t.TempDir(), "gearmand.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(text), exe, buildGearmand(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", unit)
	cmd.Dir = filepath.Dir(unit)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
