package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gearmand/server"
	"gearmand/store"
)

func TestMain(m *testing.M) {
	// Never read the machine's /etc/gearmand.conf.
	dir, err := os.MkdirTemp("", "gearmand-test")
	if err != nil {
		panic(err)
	}
	defaultConfigFile = filepath.Join(dir, "absent.conf")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func env(kv ...string) func(string) string {
	m := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	o, err := parseOptions(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	want := &options{
		port:             4730,
		backlog:          32,
		pidFile:          "/var/gearmand.pid",
		logFile:          "stderr",
		level:            server.LevelError,
		jobRetries:       -1,
		maxPacketSize:    64 << 20,
		queueType:        "bolt",
		storeDriver:      "bolt",
		store:            store.Options{Path: "gearmand.db"},
		storeMode:        store.WriteThrough,
		flushInterval:    10 * time.Millisecond,
		storeTimeout:     5 * time.Second,
		storeMinFree:     64 << 20,
		threads:          4,
		hashtableBuckets: 991,
		logFormat:        "text",
		shutdownTimeout:  30 * time.Second,
		limits:           defaultLimits,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", o, want)
	}
	cfg := o.serverConfig(nil)
	if cfg.JobRetries != -1 || cfg.MaxPacketSize != 64<<20 || cfg.LogLevel != "ERROR" || cfg.HandlePrefix != "" {
		t.Errorf("server config from defaults: %+v", cfg)
	}
}

// optionCase is one option given one value; TestOptions tries it in every
// spelling (--opt=value, --opt value, -o value, -ovalue).
type optionCase struct {
	long, short string
	value       string // "" for a switch given alone
	want        func(*options)
}

var optionCases = []optionCase{
	{"port", "p", "1234", func(o *options) { o.port = 1234 }},
	{"port", "p", "0", func(o *options) { o.port = 0 }},
	{"listen", "L", "127.0.0.1", func(o *options) { o.listen = "127.0.0.1" }},
	{"listen", "L", "localhost", func(o *options) { o.listen = "localhost" }},
	{"backlog", "b", "64", func(o *options) { o.backlog = 64 }},
	{"daemon", "d", "", func(o *options) { o.daemon = true; o.logFile = "/var/log/gearmand.log" }},
	{"pid-file", "P", "/run/gm.pid", func(o *options) { o.pidFile = "/run/gm.pid"; o.pidFileRequired = true }},
	{"user", "u", "gearman", func(o *options) { o.user = "gearman" }},
	{"log-file", "l", "/var/log/gm.log", func(o *options) { o.logFile = "/var/log/gm.log" }},
	{"log-file", "l", "none", func(o *options) { o.logFile = "none" }},
	{"log-file", "l", "stderr", func(o *options) { o.logFile = "stderr" }},
	{"syslog", "", "", func(o *options) { o.syslog = true }},
	{"verbose", "", "DEBUG", func(o *options) { o.level = server.LevelDebug }},
	{"verbose", "", "notice", func(o *options) { o.level = server.LevelNotice }},
	{"verbose", "", "Critical", func(o *options) { o.level = server.LevelCritical }},
	{"verbose", "", "FATAL", func(o *options) { o.level = server.LevelFatal }},
	{"verbose", "", "alert", func(o *options) { o.level = server.LevelAlert }},
	{"verbose", "", "warning", func(o *options) { o.level = server.LevelWarning }},
	{"verbose", "", "info", func(o *options) { o.level = server.LevelInfo }},
	{"verbose", "", "error", func(o *options) {}},
	{"version", "V", "", func(o *options) { *o = options{version: true} }},
	{"help", "h", "", func(o *options) { *o = options{help: true} }},
	{"threads", "t", "0", func(o *options) { o.threads = 0 }},
	{"job-retries", "j", "-1", func(o *options) {}},
	{"job-retries", "j", "0", func(o *options) { o.jobRetries = 0 }},
	{"job-retries", "j", "1", func(o *options) { o.jobRetries = 1 }},
	{"job-retries", "j", "255", func(o *options) { o.jobRetries = 255 }},
	{"worker-wakeup", "w", "3", func(o *options) { o.workerWakeup = 3 }},
	{"round-robin", "R", "", func(o *options) { o.roundRobin = true }},
	{"job-handle-prefix", "", "H:box", func(o *options) { o.handlePrefix = "H:box" }},
	{"exceptions", "", "", func(o *options) { o.exceptions = true }},
	{"keepalive", "", "", func(o *options) { o.keepAlive.Enable = true }},
	{"keepalive-idle", "", "60", func(o *options) { o.keepAlive.Idle = time.Minute }},
	{"keepalive-interval", "", "5", func(o *options) { o.keepAlive.Interval = 5 * time.Second }},
	{"keepalive-count", "", "3", func(o *options) { o.keepAlive.Count = 3 }},
	{"keepalive-idle", "", "-1", func(o *options) {}},
	{"file-descriptors", "f", "4096", func(o *options) { o.fileDescriptors = 4096 }},
	{"hashtable-buckets", "", "2000", func(o *options) { o.hashtableBuckets = 2000 }},
	{"coredump", "", "", func(o *options) { o.coredump = true }},
	{"check-args", "", "", func(o *options) { o.checkArgs = true }},
	{"queue-type", "q", "builtin", func(o *options) { o.queueType = "builtin"; o.storeDriver = ""; o.store = store.Options{} }},
	{"queue-type", "q", "BuiltIn", func(o *options) { o.queueType = "builtin"; o.storeDriver = ""; o.store = store.Options{} }},
	{"queue-type", "q", "bolt", func(o *options) {}},
	{"queue-type", "q", "Pebble", func(o *options) { o.queueType = "pebble"; o.storeDriver = "pebble"; o.store.Path = "gearmand.pebble" }},
	{"bolt-file", "", "/var/lib/gm/jobs.db", func(o *options) { o.store.Path = "/var/lib/gm/jobs.db" }},
	{"store-mode", "", "write-behind", func(o *options) { o.storeMode = store.WriteBehind }},
	{"flush-interval", "", "50ms", func(o *options) { o.flushInterval = 50 * time.Millisecond }},
	{"max-packet-size", "", "1024", func(o *options) { o.maxPacketSize = 1024 }},
}

func TestOptions(t *testing.T) {
	for _, c := range optionCases {
		var spellings [][]string
		if c.value == "" {
			spellings = append(spellings, []string{"--" + c.long}, []string{"--" + c.long + "=true"})
			if c.short != "" {
				spellings = append(spellings, []string{"-" + c.short})
			}
		} else {
			spellings = append(spellings, []string{"--" + c.long + "=" + c.value}, []string{"--" + c.long, c.value})
			if c.short != "" {
				spellings = append(spellings, []string{"-" + c.short, c.value}, []string{"-" + c.short + c.value})
			}
		}
		for _, args := range spellings {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				want, err := parseOptions(nil, env())
				if err != nil {
					t.Fatal(err)
				}
				c.want(want)
				got, err := parseOptions(args, env())
				if err != nil {
					t.Fatalf("parseOptions(%q): %v", args, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("parseOptions(%q):\n got %+v\nwant %+v", args, got, want)
				}
			})
		}
	}
}

func TestOptionsCombined(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		want func(*options)
	}{
		{"GEARMAND_PORT replaces the default", nil, env("GEARMAND_PORT", "5000"), func(o *options) { o.port = 5000 }},
		{"-p wins over GEARMAND_PORT", []string{"-p", "6000"}, env("GEARMAND_PORT", "5000"), func(o *options) { o.port = 6000 }},
		{"explicit default port wins over GEARMAND_PORT", []string{"--port=4730"}, env("GEARMAND_PORT", "5000"), func(o *options) {}},
		{"empty GEARMAND_PORT is ignored", nil, env("GEARMAND_PORT", ""), func(o *options) {}},
		{"-v", []string{"-v"}, env(), func(o *options) { o.level = server.LevelWarning }},
		{"-vv", []string{"-vv"}, env(), func(o *options) { o.level = server.LevelNotice }},
		{"-vvv", []string{"-vvv"}, env(), func(o *options) { o.level = server.LevelInfo }},
		{"-v -v -v -v", []string{"-v", "-v", "-v", "-v"}, env(), func(o *options) { o.level = server.LevelDebug }},
		{"too many -v stop at DEBUG", []string{"-vvvvvvvvvv"}, env(), func(o *options) { o.level = server.LevelDebug }},
		{"-v raises --verbose", []string{"--verbose", "FATAL", "-vv"}, env(), func(o *options) { o.level = server.LevelCritical }},
		{"-dv combined", []string{"-dv"}, env(), func(o *options) {
			o.daemon = true
			o.logFile = "/var/log/gearmand.log"
			o.level = server.LevelWarning
		}},
		{"--log-file with --daemon", []string{"-d", "-l", "stderr"}, env(), func(o *options) { o.daemon = true }},
		{"last value wins", []string{"-p", "1", "-p", "2"}, env(), func(o *options) { o.port = 2 }},
		{"keepalive all", []string{"--keepalive", "--keepalive-idle", "10", "--keepalive-interval=2", "--keepalive-count", "4"}, env(), func(o *options) {
			o.keepAlive = server.KeepAlive{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 4}
		}},
		{"switch set false", []string{"--exceptions=false"}, env(), func(o *options) {}},
		{"empty -L is all addresses", []string{"-L", ""}, env(), func(o *options) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := parseOptions(nil, env())
			if err != nil {
				t.Fatal(err)
			}
			tc.want(want)
			got, err := parseOptions(tc.args, tc.env)
			if err != nil {
				t.Fatalf("parseOptions(%q): %v", tc.args, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseOptions(%q):\n got %+v\nwant %+v", tc.args, got, want)
			}
		})
	}
}

func TestServerConfig(t *testing.T) {
	o, err := parseOptions([]string{"-j", "3", "-w", "2", "--exceptions", "--job-handle-prefix", "H:x", "--max-packet-size", "100", "--keepalive", "--keepalive-idle", "7", "--verbose", "info"}, env())
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.serverConfig(nil)
	want := server.Config{
		HandlePrefix:  "H:x",
		JobRetries:    3,
		WorkerWakeup:  2,
		Exceptions:    true,
		MaxPacketSize: 100,
		KeepAlive:     server.KeepAlive{Enable: true, Idle: 7 * time.Second},
		LogLevel:      "INFO",
		FlushInterval: 10 * time.Millisecond,
		StoreTimeout:  5 * time.Second,
		StoreMinFree:  64 << 20,
		// --shutdown-timeout 30s
		ShutdownTimeout: 30 * time.Second,
		// the limits' defaults
		PacketTimeout:  server.DefaultPacketTimeout,
		MaxUnsentBytes: server.DefaultMaxUnsentBytes,
		WriteTimeout:   server.DefaultWriteTimeout,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("serverConfig:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string // in the error
	}{
		{[]string{"--po", "1234"}, env(), "unknown flag: --po"},
		{[]string{"--verb", "DEBUG"}, env(), "unknown flag: --verb"},
		{[]string{"-x"}, env(), "unknown shorthand flag: 'x' in -x"},
		{[]string{"stray"}, env(), `unexpected argument "stray"`},
		{[]string{"-p", "1", "stray"}, env(), `unexpected argument "stray"`},
		{[]string{"--", "-p"}, env(), `unexpected argument "-p"`},
		{[]string{"-p"}, env(), "flag needs an argument: 'p' in -p"},
		{[]string{"--port"}, env(), "flag needs an argument: --port"},
		{[]string{"-p", "abc"}, env(), `invalid argument "abc" for "-p, --port"`},
		{[]string{"-p", "65536"}, env(), "--port: 65536"},
		{[]string{"-p", "-1"}, env(), "--port: -1"},
		{nil, env("GEARMAND_PORT", "http"), `GEARMAND_PORT: "http"`},
		{nil, env("GEARMAND_PORT", "70000"), `GEARMAND_PORT: "70000"`},
		{[]string{"--verbose", "LOUD"}, env(), `--verbose: unknown log level "LOUD"`},
		{[]string{"--store-mode", "sometimes"}, env(), "--store-mode: store mode must be write-through or write-behind, not sometimes"},
		{[]string{"--flush-interval", "0s"}, env(), "--flush-interval: 0s is not a positive duration"},
		{[]string{"--bolt-file", ""}, env(), "--bolt-file: empty path"},
		{[]string{"-q", "bolt", "--pebble-dir", "/tmp/x"}, env(), "--pebble-dir is an option of --queue-type=pebble, not bolt"},
		{[]string{"--verbose="}, env(), `--verbose: unknown log level ""`},
		{[]string{"-j", "-2"}, env(), "--job-retries: -2 is out of range"},
		{[]string{"-j", "256"}, env(), "--job-retries: 256 is out of range"},
		{[]string{"--job-retries=x"}, env(), `invalid argument "x" for "-j, --job-retries"`},
		{[]string{"-w", "-1"}, env(), "--worker-wakeup: -1"},
		{[]string{"-w", "256"}, env(), "--worker-wakeup: 256"},
		{[]string{"-b", "-1"}, env(), "--backlog: -1"},
		{[]string{"-t", "-1"}, env(), "--threads: -1"},
		{[]string{"-f", "-1"}, env(), "--file-descriptors: -1"},
		{[]string{"--hashtable-buckets", "-1"}, env(), "--hashtable-buckets: -1"},
		{[]string{"--keepalive-idle", "-2"}, env(), "--keepalive-idle: -2"},
		{[]string{"--keepalive-count", "x"}, env(), `invalid argument "x" for "--keepalive-count"`},
		{[]string{"--max-packet-size", "0"}, env(), "--max-packet-size: 0"},
		{[]string{"-P", ""}, env(), "--pid-file: empty"},
		{[]string{"-l", ""}, env(), "--log-file: empty"},
		{[]string{"--daemon=maybe"}, env(), `invalid argument "maybe" for "-d, --daemon"`},
		{[]string{"-q", "fancy"}, env(), `--queue-type: unknown queue type "fancy"`},
		{[]string{"-q", "LIBMEMCACHED"}, env(), "--queue-type: queue type libmemcached is not supported: memcached evicts keys"},
		{[]string{"-q", "libtokyocabinet"}, env(), "--queue-type: queue type libtokyocabinet is not supported: Tokyo Cabinet is unmaintained"},
		{[]string{"--libtokyocabinet-optimize"}, env(), "--libtokyocabinet-optimize: queue type libtokyocabinet is not supported"},
		{[]string{"-q", "redis", "--libmemcached-prefix", "p"}, env(), "--libmemcached-prefix: queue type libmemcached is not supported"},
		{[]string{"--libpq-conninfo=host=db"}, env(), "--libpq-conninfo is an option of --queue-type=Postgres, not bolt"},
		{[]string{"-q", "builtin", "--bolt-file", "x"}, env(), "--bolt-file is an option of --queue-type=bolt, not builtin"},
		{[]string{"-q", "redis", "--redis-port", "http"}, env(), `--redis-port: "http" is not a port number`},
		{[]string{"--redis-server", "r"}, env(), "--redis-server is an option of --queue-type=redis, not bolt"},
		{[]string{"--libmemcached-servers", "m"}, env(), "--libmemcached-servers: queue type libmemcached is not supported"},
		{[]string{"--config-file", "/nonexistent/gearmand.conf"}, env(), "--config-file: open /nonexistent/gearmand.conf: no such file or directory"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseOptions(tc.args, tc.env)
			if err == nil {
				t.Fatalf("parseOptions(%q) = %+v, want an error containing %q", tc.args, o, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseOptions(%q) error %q, want it to contain %q", tc.args, err, tc.want)
			}
		})
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gearmand.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile(t *testing.T) {
	conf := writeConfig(t, `# gearmand options
--port=5555 -L 127.0.0.1   # trailing comment
--verbose WARNING
-j 2
	--exceptions
-vv
--job-handle-prefix H:conf
`)
	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		want func(*options)
	}{
		{"file alone", nil, env(), func(o *options) {}},
		{"command line overrides", []string{"-p", "6666", "--verbose=error", "-j", "0", "--exceptions=false"}, env(), func(o *options) {
			o.port = 6666
			o.level = server.LevelNotice // -vv from the file still applies to ERROR
			o.jobRetries = 0
			o.exceptions = false
		}},
		{"command line -v replaces the file's", []string{"-v"}, env(), func(o *options) { o.level = server.LevelNotice }},
		{"command line adds", []string{"-w", "4"}, env(), func(o *options) { o.workerWakeup = 4 }},
		{"port from the file wins over GEARMAND_PORT", nil, env("GEARMAND_PORT", "7777"), func(o *options) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := &options{
				port:             5555,
				listen:           "127.0.0.1",
				backlog:          32,
				pidFile:          "/var/gearmand.pid",
				logFile:          "stderr",
				level:            server.LevelInfo, // WARNING raised by -vv
				jobRetries:       2,
				exceptions:       true,
				handlePrefix:     "H:conf",
				maxPacketSize:    64 << 20,
				queueType:        "bolt",
				storeDriver:      "bolt",
				store:            store.Options{Path: "gearmand.db"},
				flushInterval:    10 * time.Millisecond,
				storeTimeout:     5 * time.Second,
				storeMinFree:     64 << 20,
				threads:          4,
				hashtableBuckets: 991,
				configFile:       conf,
				logFormat:        "text",
				shutdownTimeout:  30 * time.Second,
				limits:           defaultLimits,
			}
			tc.want(want)
			got, err := parseOptions(append([]string{"--config-file", conf}, tc.args...), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConfigFileDefaultPath(t *testing.T) {
	saved := defaultConfigFile
	t.Cleanup(func() { defaultConfigFile = saved })

	defaultConfigFile = filepath.Join(t.TempDir(), "missing.conf")
	o, err := parseOptions(nil, env())
	if err != nil {
		t.Fatalf("a missing default config file must be ignored: %v", err)
	}
	if o.configFile != "" {
		t.Errorf("configFile = %q, want none", o.configFile)
	}

	defaultConfigFile = writeConfig(t, "-p 4000\n")
	o, err = parseOptions(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	if o.port != 4000 || o.configFile != defaultConfigFile {
		t.Errorf("default config file not read: port %d, configFile %q", o.port, o.configFile)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"--po 1234\n", "unknown flag: --po"},
		{"-p 1 stray\n", `unexpected argument "stray"`},
		{"--verbose LOUD\n", `--verbose: unknown log level "LOUD"`},
		{"-j 300\n", "--job-retries: 300"},
	} {
		conf := writeConfig(t, tc.text)
		_, err := parseOptions([]string{"--config-file=" + conf}, env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
	// Values are checked once merged, so the command line can replace a
	// value the file has out of range.
	conf := writeConfig(t, "-j 300\n")
	if _, err := parseOptions([]string{"--config-file", conf, "-j", "1"}, env()); err != nil {
		t.Errorf("-j on the command line should override the file's -j: %v", err)
	}
}

// TestEmptyQueueType: gearmand's own tests start it with --queue-type=,
// which takes the default.
func TestEmptyQueueType(t *testing.T) {
	for _, args := range [][]string{{"--queue-type="}, {"-q", ""}} {
		o, err := parseOptions(args, env())
		if err != nil {
			t.Fatalf("parseOptions(%q): %v", args, err)
		}
		if o.queueType != defaultQueueType || o.storeDriver != defaultQueueType {
			t.Errorf("parseOptions(%q): queue type %q, driver %q; want the default, %s", args, o.queueType, o.storeDriver, defaultQueueType)
		}
	}
}

func TestConfigTokens(t *testing.T) {
	got := configTokens([]byte("# c\n  -p 1\t--listen=x #y z\n\n--exceptions\r\n#\n-v"))
	want := []string{"-p", "1", "--listen=x", "--exceptions", "-v"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("configTokens = %q, want %q", got, want)
	}
}

// TestStoreOptions covers the options of the networked stores, which need
// more than one option at a time.
func TestStoreOptions(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		driver string
		want   store.Options
	}{
		{[]string{"-q", "postgres", "--dsn", "postgres://h/db"}, "Postgres", store.Options{DSN: "postgres://h/db", Namespace: host + ":4730"}},
		{[]string{"-q", "Postgres", "--libpq-conninfo", "host=h dbname=db", "--libpq-table", "queue"}, "Postgres", store.Options{DSN: "host=h dbname=db", Namespace: host + ":4730"}},
		{[]string{"-q", "postgres", "--dsn", "postgres://h/db", "--store-namespace", "a", "-p", "4731"}, "Postgres", store.Options{DSN: "postgres://h/db", Namespace: "a"}},
		{[]string{"-q", "redis"}, "redis", store.Options{DSN: "127.0.0.1:6379", Namespace: host + ":4730"}},
		{[]string{"-q", "redis", "-p", "4800", "--redis-server", "r1", "--redis-port", "7000", "--redis-password", "pw"}, "redis", store.Options{DSN: "r1:7000", Namespace: host + ":4800", Extra: map[string]string{"password": "pw"}}},
		{[]string{"-q", "redis", "--redis-addr", "a:1,b:2", "--redis-prefix", "_gear_"}, "redis", store.Options{DSN: "a:1,b:2", Namespace: "_gear_"}},
		{[]string{"-q", "redis", "--redis-prefix", "_gear_", "--store-namespace", "ns"}, "redis", store.Options{DSN: "127.0.0.1:6379", Namespace: "ns"}},
	} {
		o, err := parseOptions(tc.args, env())
		if err != nil {
			t.Errorf("parseOptions(%q): %v", tc.args, err)
			continue
		}
		if o.storeDriver != tc.driver || !reflect.DeepEqual(o.store, tc.want) {
			t.Errorf("parseOptions(%q): driver %q, store %+v; want %q, %+v", tc.args, o.storeDriver, o.store, tc.driver, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-q", "postgres"}, "--dsn: -q postgres needs a connection string (--dsn or --libpq-conninfo)"},
		{[]string{"-q", "bolt", "--dsn", "x"}, "--dsn is an option of --queue-type=Postgres, not bolt"},
		{[]string{"-q", "postgres", "--dsn", "x", "--redis-addr", "y"}, "--redis-addr is an option of --queue-type=redis, not Postgres"},
	} {
		if _, err := parseOptions(tc.args, env()); err == nil || err.Error() != tc.want {
			t.Errorf("parseOptions(%q): %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestStoreTimeoutAndMinFree(t *testing.T) {
	o, err := parseOptions(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if o.storeTimeout != 5*time.Second || o.storeMinFree != 64<<20 {
		t.Errorf("defaults: --store-timeout %v, --store-min-free %d; want 5s and 64 MiB", o.storeTimeout, o.storeMinFree)
	}
	for arg, want := range map[string]uint64{"0": 0, "4096": 4096, "512KiB": 512 << 10, "64MiB": 64 << 20, "1G": 1 << 30, "2gb": 2 << 30} {
		o, err := parseOptions([]string{"--store-min-free", arg}, func(string) string { return "" })
		if err != nil {
			t.Errorf("--store-min-free %s: %v", arg, err)
			continue
		}
		if o.storeMinFree != want {
			t.Errorf("--store-min-free %s = %d, want %d", arg, o.storeMinFree, want)
		}
	}
	for _, args := range [][]string{{"--store-min-free", "lots"}, {"--store-min-free", "5PiB"}, {"--store-min-free", "-1"}, {"--store-timeout", "-1s"}} {
		if _, err := parseOptions(args, func(string) string { return "" }); err == nil {
			t.Errorf("%v was accepted", args)
		} else {
			t.Logf("%v: %v", args, err)
		}
	}
	cfg := (&options{storeTimeout: time.Second, storeMinFree: 1}).serverConfig(nil)
	if cfg.StoreTimeout != time.Second || cfg.StoreMinFree != 1 {
		t.Errorf("serverConfig: StoreTimeout %v, StoreMinFree %d", cfg.StoreTimeout, cfg.StoreMinFree)
	}
}
