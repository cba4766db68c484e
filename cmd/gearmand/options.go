package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"gearmand/server"
	"gearmand/server/tlsconf"
	"gearmand/store"
)

const (
	defaultPort          = 4730
	defaultPidFile       = "/var/gearmand.pid"
	defaultDaemonLogFile = "/var/log/gearmand.log"
	defaultMaxPacketSize = 64 << 20
	defaultQueueType     = "bolt"

	// logStderr and logNone are the --log-file values that name no file.
	logStderr = "stderr"
	logNone   = "none"

	// logText and logJSON are the --log-format values.
	logText = "text"
	logJSON = "json"

	defaultShutdownTimeout = 30 * time.Second
)

// defaultConfigFile is read when --config-file is not given; its absence is
// not an error. A variable so that tests do not depend on the machine's
// /etc.
var defaultConfigFile = "/etc/gearmand.conf"

// options is the validated command line (merged with the config file and
// the environment), ready for run.
type options struct {
	port    int    // 0 picks a free port
	listen  string // host or address; "" is every address, v4 and v6
	backlog int    // accepted for compatibility; Go uses the system's maximum

	daemon bool
	// pidFile is written once listening and removed on exit. When
	// pidFileRequired is false (the default path) failing to write it is
	// only logged.
	pidFile         string
	pidFileRequired bool
	user            string // setuid/setgid to this user after binding

	logFile string     // a path, logStderr or logNone
	syslog  bool       // also log to syslog
	level   slog.Level // one of the server.Level* values
	// logFormat is logText or logJSON: how records are written to the
	// log file or stderr (syslog always gets text).
	logFormat string

	// shutdownTimeout bounds the wait for running jobs on a graceful
	// stop; 0 does not wait.
	shutdownTimeout time.Duration

	jobRetries    int // gearmand master's meaning: -1 unlimited, 0 no retry
	workerWakeup  int // 0 wakes every sleeping worker
	handlePrefix  string
	exceptions    bool
	keepAlive     server.KeepAlive
	maxPacketSize int

	// fileDescriptors, when not 0, is the RLIMIT_NOFILE to set.
	fileDescriptors uint64

	// queueType is the canonical name of the selected queue type.
	queueType string
	// storeDriver is the registered store driver, "" for builtin; store
	// is what it is opened with.
	storeDriver   string
	store         store.Options
	storeMode     store.Mode
	flushInterval time.Duration
	// storeTimeout and storeMinFree are --store-timeout and
	// --store-min-free (0: off).
	storeTimeout time.Duration
	storeMinFree uint64

	// configFile is the config file that was read, "" when none was.
	configFile string

	// tls names the --ssl files; nil without --ssl.
	tls *tlsconf.Files
	// adminAllow is --admin-allow.
	adminAllow []netip.Prefix
	// http is the HTTP protocol's settings (-r http), nil when it is off.
	http *httpOptions
	// web is the --web-listen address, "" when the dashboard is off.
	web string
	// limits are the resource limits (limits.go).
	limits limitFlags

	// Accepted for compatibility and otherwise ignored.
	threads          int
	roundRobin       bool // always on
	hashtableBuckets int
	coredump         bool

	help      bool
	version   bool
	checkArgs bool // validate the options and exit 0
	handBack  bool // move the stored jobs into C gearmand's own place and exit (handback.go)
}

// flagValues is what pflag parses into; options turns it into options.
type flagValues struct {
	port              int
	listen            string
	backlog           int
	daemon            bool
	pidFile           string
	user              string
	logFile           string
	syslog            bool
	verbose           string
	moreVerbose       int // -v, repeatable
	version           bool
	help              bool
	threads           int
	jobRetries        int
	workerWakeup      int
	roundRobin        bool
	handlePrefix      string
	exceptions        bool
	keepalive         bool
	keepaliveIdle     int
	keepaliveInterval int
	keepaliveCount    int
	fileDescriptors   int64
	hashtableBuckets  int
	coredump          bool
	checkArgs         bool
	handBack          bool
	configFile        string
	queueType         string
	storeNamespace    string
	storeMode         string
	flushInterval     time.Duration
	storeTimeout      time.Duration
	storeMinFree      byteSize
	maxPacketSize     int
	security          securityFlags // --ssl*, --admin-allow
	http              httpFlags     // -r http, --http-port
	web               webFlags      // --web-listen
	limits            limitFlags    // --max-connections, --packet-timeout, ...
	logFormat         string
	shutdownTimeout   time.Duration
}

// newFlagSet defines gearmand's options. Parse errors are returned, never
// printed, and abbreviations of long options are not accepted (pflag never
// guesses), just as gearmand turns off Boost's guessing.
func newFlagSet() (*pflag.FlagSet, *flagValues) {
	v := &flagValues{}
	fs := pflag.NewFlagSet("gearmand", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false

	fs.IntVarP(&v.port, "port", "p", defaultPort, "TCP port to listen on; when not given, env GEARMAND_PORT overrides the default")
	fs.StringVarP(&v.listen, "listen", "L", "", "address or host name to listen on; every address it resolves to is bound (default all addresses, IPv4 and IPv6)")
	fs.IntVarP(&v.backlog, "backlog", "b", 32, "listen backlog (accepted; the system's maximum is used)")
	fs.BoolVarP(&v.daemon, "daemon", "d", false, "run in the background; the command returns once the server is listening")
	fs.StringVarP(&v.pidFile, "pid-file", "P", defaultPidFile, "file to write the process id to; removed on exit")
	fs.StringVarP(&v.user, "user", "u", "", "switch to this user after binding (needs root)")
	fs.StringVarP(&v.logFile, "log-file", "l", "", `log file, or "stderr" or "none" (default stderr, or `+defaultDaemonLogFile+` with --daemon); SIGHUP reopens it`)
	fs.BoolVar(&v.syslog, "syslog", false, "also log to syslog")
	fs.StringVar(&v.logFormat, "log-format", logText, "log record format for the log file or stderr: text (key=value) or json (one object per line); levels keep gearmand's names")
	fs.DurationVar(&v.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM, SIGINT or the admin command shutdown graceful, how long running jobs may take to finish before the server stops anyway (0: do not wait)")
	fs.StringVar(&v.verbose, "verbose", "ERROR", "log level: FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG; each -v raises it one step (-vvv)")
	// -v has no long form in gearmand; pflag needs a name, so it gets the
	// hidden --v.
	fs.CountVarP(&v.moreVerbose, "v", "v", "raise the log level one step")
	fs.BoolVarP(&v.version, "version", "V", false, "print the version and exit")
	fs.BoolVarP(&v.help, "help", "h", false, "print this help and exit")
	fs.IntVarP(&v.threads, "threads", "t", 4, "I/O threads (accepted and ignored; the Go runtime schedules connections)")
	fs.IntVarP(&v.jobRetries, "job-retries", "j", -1, "runs of a job whose worker is lost before it fails: -1 unlimited, 0 no retry, 1..255")
	fs.IntVarP(&v.workerWakeup, "worker-wakeup", "w", 0, "sleeping workers woken per new job, 0..255; 0 wakes all")
	fs.BoolVarP(&v.roundRobin, "round-robin", "R", false, "assign work round-robin across a worker's functions (always on)")
	fs.StringVar(&v.handlePrefix, "job-handle-prefix", "", "job handle prefix (default H:<hostname>)")
	fs.BoolVar(&v.exceptions, "exceptions", false, "turn the exceptions option on for every connection")
	fs.BoolVar(&v.keepalive, "keepalive", false, "enable TCP keepalive on client connections")
	fs.IntVar(&v.keepaliveIdle, "keepalive-idle", -1, "seconds idle before the first keepalive probe (-1: system default)")
	fs.IntVar(&v.keepaliveInterval, "keepalive-interval", -1, "seconds between keepalive probes (-1: system default)")
	fs.IntVar(&v.keepaliveCount, "keepalive-count", -1, "unanswered probes before the connection is dropped (-1: system default)")
	fs.Int64VarP(&v.fileDescriptors, "file-descriptors", "f", 0, "set the open file limit (RLIMIT_NOFILE); 0 leaves it alone")
	fs.IntVar(&v.hashtableBuckets, "hashtable-buckets", 991, "job hash table size (accepted and ignored)")
	fs.BoolVar(&v.coredump, "coredump", false, "let crashes dump core (accepted and ignored)")
	fs.BoolVar(&v.checkArgs, "check-args", false, "check the options and the store (its directory, or that its server answers and takes the login) without serving or changing anything, and exit: 0 when they are fine")
	fs.BoolVar(&v.handBack, "hand-back", false, handBackUsage)
	fs.StringVar(&v.configFile, "config-file", defaultConfigFile, "file of further options, whitespace-separated as on the command line, # starts a comment; the command line wins")
	fs.StringVarP(&v.queueType, "queue-type", "q", defaultQueueType, "job store: "+queueTypeNames()+"; background jobs survive restarts and crashes in every store but builtin")
	fs.StringVar(&v.storeNamespace, "store-namespace", "", "separates servers sharing one PostgreSQL or Redis; a server started with a dead one's namespace takes over its jobs (default <hostname>:<port>)")
	fs.StringVar(&v.storeMode, "store-mode", "write-through", "write-through: JOB_CREATED once the job is durable; write-behind: at once, stored within --flush-interval")
	fs.DurationVar(&v.flushInterval, "flush-interval", 10*time.Millisecond, "how often write-behind flushes (the loss window on a crash)")
	fs.DurationVar(&v.storeTimeout, "store-timeout", defaultStoreTimeout, "longest a background submitter waits for the store: past it ERROR QUEUE_ERROR and the job is not created (a write landing later keeps the job, which runs); 0: wait as long as the store takes")
	v.storeMinFree = defaultStoreMinFree
	fs.Var(&v.storeMinFree, "store-min-free", "free space kept on a file store's filesystem (bolt, pebble, libsqlite3): below it new background jobs get ERROR QUEUE_ERROR until space is freed; completions still work (bytes, or with KiB, MiB, GiB; 0: off)")
	fs.IntVar(&v.maxPacketSize, "max-packet-size", defaultMaxPacketSize, "largest binary packet payload accepted, in bytes")
	addStoreFlags(fs)
	addSecurityFlags(fs, &v.security)
	addHTTPFlags(fs, &v.http)
	addWebFlags(fs, &v.web)
	addLimitFlags(fs, &v.limits)

	fs.MarkHidden("v")
	return fs, v
}

// parseOptions parses gearmand's command line. Options in the config file
// (--config-file, default /etc/gearmand.conf) apply unless the command line
// gives them too; GEARMAND_PORT (read with getenv) replaces the default
// port. Every error names the option or setting at fault.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	fs, v := newFlagSet()
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if v.help || v.version {
		return &options{help: v.help, version: v.version}, nil
	}

	var configFile string
	data, err := os.ReadFile(v.configFile)
	switch {
	case err == nil:
		configFile = v.configFile
	case errors.Is(err, os.ErrNotExist) && !fs.Changed("config-file"):
		// The default file is optional.
	default:
		return nil, fmt.Errorf("--config-file: %w", err)
	}
	if configFile != "" {
		// Parse the file on its own, then lay every option the command
		// line set over it. Setting a flag from its own String() round
		// trips for every kind used here (a count, too, sets rather
		// than adds).
		ffs, fv := newFlagSet()
		if err := parseFlags(ffs, configTokens(data)); err != nil {
			return nil, fmt.Errorf("config file %s: %w", configFile, err)
		}
		var setErr error
		fs.Visit(func(f *pflag.Flag) {
			if err := ffs.Set(f.Name, f.Value.String()); err != nil && setErr == nil {
				setErr = fmt.Errorf("--%s: %w", f.Name, err)
			}
		})
		if setErr != nil {
			return nil, setErr
		}
		fs, v = ffs, fv
	}

	o, err := v.options(fs, getenv)
	if err != nil {
		return nil, err
	}
	o.configFile = configFile
	return o, nil
}

// parseFlags parses args into fs and rejects positional arguments, which
// gearmand has none of.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// configTokens splits a config file as gearmand does: into whitespace
// separated command-line tokens. A token starting with '#' starts a comment
// that runs to the end of its line.
func configTokens(data []byte) []string {
	var tokens []string
	for line := range strings.Lines(string(data)) {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "#") {
				break
			}
			tokens = append(tokens, f)
		}
	}
	return tokens
}

// levels are gearmand's log levels from the quietest to the loudest; each
// -v moves one step along.
var levels = []slog.Level{
	server.LevelFatal, server.LevelAlert, server.LevelCritical, server.LevelError,
	server.LevelWarning, server.LevelNotice, server.LevelInfo, server.LevelDebug,
}

// options validates the parsed values. fs tells which options were given.
func (v *flagValues) options(fs *pflag.FlagSet, getenv func(string) string) (*options, error) {
	o := &options{
		listen:           v.listen,
		backlog:          v.backlog,
		daemon:           v.daemon,
		pidFile:          v.pidFile,
		pidFileRequired:  fs.Changed("pid-file"),
		user:             v.user,
		logFile:          v.logFile,
		syslog:           v.syslog,
		jobRetries:       v.jobRetries,
		workerWakeup:     v.workerWakeup,
		handlePrefix:     v.handlePrefix,
		exceptions:       v.exceptions,
		maxPacketSize:    v.maxPacketSize,
		threads:          v.threads,
		roundRobin:       v.roundRobin,
		hashtableBuckets: v.hashtableBuckets,
		coredump:         v.coredump,
		checkArgs:        v.checkArgs,
		handBack:         v.handBack,
	}

	o.port = v.port
	if p := getenv("GEARMAND_PORT"); p != "" && !fs.Changed("port") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("GEARMAND_PORT: %q is not a port number", p)
		}
		o.port = n
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--port: %d is not a port number (0..65535)", o.port)
	}
	if o.backlog < 0 {
		return nil, fmt.Errorf("--backlog: %d is negative", o.backlog)
	}
	if o.pidFile == "" {
		return nil, errors.New("--pid-file: empty file name")
	}
	if !fs.Changed("log-file") {
		o.logFile = logStderr
		if o.daemon {
			o.logFile = defaultDaemonLogFile
		}
	} else if o.logFile == "" {
		return nil, errors.New("--log-file: empty file name")
	}

	switch v.logFormat {
	case logText, logJSON:
		o.logFormat = v.logFormat
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", v.logFormat)
	}
	if v.shutdownTimeout < 0 {
		return nil, fmt.Errorf("--shutdown-timeout: %v is negative", v.shutdownTimeout)
	}
	o.shutdownTimeout = v.shutdownTimeout

	level, err := server.ParseLevel(v.verbose)
	if err != nil {
		return nil, fmt.Errorf("--verbose: %w", err)
	}
	i := 0
	for i < len(levels)-1 && levels[i] != level {
		i++
	}
	o.level = levels[min(i+v.moreVerbose, len(levels)-1)]

	if o.jobRetries < -1 || o.jobRetries > 255 {
		return nil, fmt.Errorf("--job-retries: %d is out of range (-1 unlimited, 0 no retry, or 1..255)", o.jobRetries)
	}
	if o.workerWakeup < 0 || o.workerWakeup > 255 {
		return nil, fmt.Errorf("--worker-wakeup: %d is out of range (0 all, or 1..255)", o.workerWakeup)
	}
	if o.threads < 0 {
		return nil, fmt.Errorf("--threads: %d is negative", o.threads)
	}
	if o.hashtableBuckets < 0 {
		return nil, fmt.Errorf("--hashtable-buckets: %d is negative", o.hashtableBuckets)
	}
	if o.maxPacketSize <= 0 {
		return nil, fmt.Errorf("--max-packet-size: %d is not a positive number of bytes", o.maxPacketSize)
	}
	if v.fileDescriptors < 0 {
		return nil, fmt.Errorf("--file-descriptors: %d is negative", v.fileDescriptors)
	}
	o.fileDescriptors = uint64(v.fileDescriptors)

	o.keepAlive.Enable = v.keepalive
	for _, s := range []struct {
		name string
		n    int
		d    *time.Duration
	}{
		{"keepalive-idle", v.keepaliveIdle, &o.keepAlive.Idle},
		{"keepalive-interval", v.keepaliveInterval, &o.keepAlive.Interval},
		{"keepalive-count", v.keepaliveCount, nil},
	} {
		if s.n < -1 {
			return nil, fmt.Errorf("--%s: %d is out of range (-1 for the system default, or 0 and up)", s.name, s.n)
		}
		n := max(s.n, 0) // zero leaves the system default
		if s.d != nil {
			*s.d = time.Duration(n) * time.Second
		} else {
			o.keepAlive.Count = n
		}
	}

	d, err := selectQueueType(v.queueType, fs)
	if err != nil {
		return nil, err
	}
	o.queueType = builtinQueue
	if d != nil {
		o.queueType, o.storeDriver = d.Name, d.Name
		if o.store, err = storeOptions(d, fs, v.storeNamespace, o.port); err != nil {
			return nil, err
		}
	}
	if o.storeMode, err = store.ParseMode(v.storeMode); err != nil {
		return nil, fmt.Errorf("--store-mode: %w", err)
	}
	if v.flushInterval <= 0 {
		return nil, fmt.Errorf("--flush-interval: %v is not a positive duration", v.flushInterval)
	}
	o.flushInterval = v.flushInterval
	if v.storeTimeout < 0 {
		return nil, fmt.Errorf("--store-timeout: %v is negative (0 turns it off)", v.storeTimeout)
	}
	o.storeTimeout, o.storeMinFree = v.storeTimeout, uint64(v.storeMinFree)
	if o.tls, err = v.security.tlsFiles(fs, getenv); err != nil {
		return nil, err
	}
	if o.adminAllow, err = v.security.adminNetworks(); err != nil {
		return nil, err
	}
	if err := v.limits.check(); err != nil {
		return nil, err
	}
	o.limits = v.limits
	if o.http, err = v.http.options(fs); err != nil {
		return nil, err
	}
	if o.web, err = v.web.address(o.port, o.http); err != nil {
		return nil, err
	}
	return o, nil
}

// serverConfig is the server's share of the options.
func (o *options) serverConfig(logger *slog.Logger) server.Config {
	cfg := server.Config{
		HandlePrefix:  o.handlePrefix,
		JobRetries:    o.jobRetries,
		WorkerWakeup:  o.workerWakeup,
		Exceptions:    o.exceptions,
		MaxPacketSize: o.maxPacketSize,
		KeepAlive:     o.keepAlive,
		Logger:        logger,
		LogLevel:      server.LevelName(o.level),
		StoreMode:     o.storeMode,
		FlushInterval: o.flushInterval,
		StoreTimeout:  o.storeTimeout,
		StoreMinFree:  o.storeMinFree,
		AdminAllow:    o.adminAllow,
		// The server's zero is its default; ours means do not wait.
		ShutdownTimeout: cmp.Or(o.shutdownTimeout, -1),
	}
	o.limits.apply(&cfg)
	return cfg
}

// usage is the --help text.
func usage(w io.Writer) {
	fs, _ := newFlagSet()
	fmt.Fprintf(w, "%s\n\nUsage: gearmand [OPTIONS]\n\nOptions:\n%s", versionLine(), fs.FlagUsages())
	fmt.Fprint(w, "\nSignals: SIGTERM and SIGINT stop gracefully (running jobs finish within --shutdown-timeout; queued background jobs stay stored), a second one stops at once; SIGUSR1 stops once no jobs are left; SIGHUP reopens the log file and reloads the --ssl files.\n")
}

func versionLine() string {
	return "gearmand " + server.Version + " - a Gearman job server in Go"
}

// The defaults of --store-timeout and --store-min-free: a client waits
// no longer than a few seconds before it can try another server, and 64
// MiB leaves room for bolt's checkpoints and pebble's flushes, which must
// still be written for deletes to free space.
const (
	defaultStoreTimeout = 5 * time.Second
	defaultStoreMinFree = 64 << 20
)

// byteSize is a flag of a number of bytes, with an optional binary unit:
// 65536, 64KiB, 64MiB, 1GiB (K, M, G and KB, MB, GB mean the same).
type byteSize uint64

func (b *byteSize) String() string { return strconv.FormatUint(uint64(*b), 10) }

func (b *byteSize) Type() string { return "bytes" }

func (b *byteSize) Set(s string) error {
	digits := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	var shift uint
	switch strings.ToUpper(strings.TrimSpace(s[len(digits):])) {
	case "", "B":
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	case "T", "TB", "TIB":
		shift = 40
	default:
		return fmt.Errorf("%q: unknown unit (use KiB, MiB, GiB or TiB)", s)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number of bytes (such as 67108864 or 64MiB)", s)
	}
	if n > math.MaxUint64>>shift {
		return fmt.Errorf("%q is too large", s)
	}
	*b = byteSize(n << shift)
	return nil
}
