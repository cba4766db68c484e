package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gearmand/server"
	"gearmand/server/tlsconf"
	"gearmand/store"
)

// run is gearmand from parsing its arguments to its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	// A daemon's stderr is /dev/null: it tells its waiting parent instead
	// (see daemon.go), and the parent prints the error.
	ready, child, err := daemonChild()
	fail := func(err error) int {
		ready.fail(err)
		fmt.Fprintf(stderr, "gearmand: %v\n", err)
		return 1
	}
	if err != nil {
		return fail(err)
	}
	o, err := parseOptions(args, os.Getenv)
	if err != nil {
		return fail(err)
	}
	switch {
	case o.help:
		usage(stdout)
		return 0
	case o.version:
		fmt.Fprintln(stdout, versionLine())
		return 0
	case o.checkArgs:
		if err := checkStore(o); err != nil {
			return fail(err)
		}
		return 0
	case o.handBack:
		return handBack(o, stdout, stderr)
	}
	if o.daemon && !child {
		return daemonize(args, stderr)
	}
	if child {
		if err := detach(o); err != nil {
			return fail(err)
		}
	}

	// Subscribe before starting so that a signal sent during startup is
	// acted on once the server runs, rather than killing it half set up.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGHUP)
	signal.Ignore(syscall.SIGPIPE)

	// A SIGTERM or SIGINT during a long replay ends it (the store is only
	// read, so nothing is lost) instead of waiting for it to finish.
	replayCtx, stopReplay := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	p, err := start(o, stderr, replayCtx)
	stopReplay()
	if errors.Is(err, errStoppedInReplay) {
		ready.fail(err)
		return 0
	}
	if err != nil {
		return fail(err)
	}
	ready.ready()
	code := p.wait(sigs)
	p.stop()
	return code
}

// process is a started gearmand: its log, server and pid file.
type process struct {
	log      *logging
	srv      *server.Server
	store    store.Store     // nil for -q builtin; closed after the server
	pidFile  string          // the pid file this process wrote, "" if none
	serveErr chan error      // a listener that failed for good
	tls      *tlsconf.Loader // nil without --ssl
	web      *http.Server    // the dashboard (--web-listen); nil when off
	// shutdownTimeout is --shutdown-timeout, for the log.
	shutdownTimeout time.Duration
}

// errStoppedInReplay is start's error when a signal ended the replay.
var errStoppedInReplay = errors.New("stopped by a signal during the replay of stored jobs")

// start does everything between parsing and serving, in gearmand's order:
// open the log, raise the file limit, bind, write the pid file, drop root,
// then serve. On error everything done so far is undone. When replayCtx
// ends during the replay, start returns errStoppedInReplay.
func start(o *options, stderr io.Writer, replayCtx context.Context) (_ *process, err error) {
	lg, err := newLogging(o, stderr)
	if err != nil {
		return nil, err
	}
	p := &process{log: lg, shutdownTimeout: o.shutdownTimeout}
	defer func() {
		if err != nil {
			if errors.Is(err, errStoppedInReplay) {
				lg.notice.Log(context.Background(), server.LevelNotice, "stopped by a signal during the replay; every stored job stays stored")
			} else {
				lg.fatal(err)
			}
			p.removePidFile()
			lg.close()
		}
	}()

	if o.store.Path != "" {
		// Absolute, so that messages and logs say which file, resolved
		// before --user may take away the right to look at the directory.
		if o.store.Path, err = filepath.Abs(o.store.Path); err != nil {
			return nil, fmt.Errorf("--queue-type=%s: %w", o.queueType, err)
		}
	}

	var account *user.User
	if o.user != "" {
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("--user %s: only root can switch to another user", o.user)
		}
		if account, err = user.Lookup(o.user); err != nil {
			return nil, fmt.Errorf("--user: %w", err)
		}
	}
	if o.fileDescriptors > 0 {
		if err := setFileLimit(o.fileDescriptors); err != nil {
			return nil, fmt.Errorf("--file-descriptors: setting the open file limit to %d: %w", o.fileDescriptors, err)
		}
	}

	// Read the TLS files while still root: keys are often root's alone.
	// (A SIGHUP reload reads them again as --user.)
	if p.tls, err = loadTLS(o.tls); err != nil {
		return nil, err
	}
	if p.tls != nil {
		lg.notice.Log(context.Background(), server.LevelNotice, "TLS enabled",
			append(certificateAttrs(p.tls.Leaf()), "certificate", o.tls.Certificate, "client_certificates", o.tls.ClientAuth.String())...)
	}
	ls, err := listen(context.Background(), o.listen, o.port, lg.logger)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		ls = serveTLS(ls, p.tls.Config())
	}
	defer func() {
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
		}
	}()
	hls, err := listenHTTP(o, lg.logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, l := range hls {
				l.Close()
			}
		}
	}()
	wl, err := listenWeb(o.web)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && wl != nil {
			p.stopWeb()
			wl.Close()
		}
	}()

	if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		if o.pidFileRequired {
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
		lg.logger.Warn("could not write the pid file", "err", err)
	} else {
		p.pidFile = o.pidFile
	}

	if account != nil {
		if err := switchUser(account); err != nil {
			return nil, fmt.Errorf("--user %s: %w", o.user, err)
		}
	}

	cfg := o.serverConfig(lg.logger)
	if o.storeDriver != "" {
		so := o.store
		so.Logger = lg.logger
		st, err := store.Open(context.Background(), o.storeDriver, so)
		if err != nil {
			return nil, fmt.Errorf("--queue-type=%s: %w", o.queueType, err)
		}
		p.store = st
		cfg.Store = st
		cfg.StoreName = o.queueType
		p.logStoreWarnings(context.Background())
	}
	defer func() {
		if err != nil && p.store != nil {
			p.store.Close()
		}
	}()
	p.srv = server.New(cfg)
	// The dashboard starts before the replay, which it shows in progress.
	p.serveWeb(wl)
	if _, err := p.srv.Replay(replayCtx); err != nil {
		p.srv.Close()
		if replayCtx.Err() != nil {
			return nil, errStoppedInReplay
		}
		return nil, err
	}
	p.serveErr = make(chan error, len(ls)+len(hls))
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.Addr().String()
		go func(l net.Listener) {
			if err := p.srv.Serve(l); !errors.Is(err, server.ErrServerClosed) {
				p.serveErr <- fmt.Errorf("listener %s: %w", l.Addr(), err)
			}
		}(l)
	}
	p.serveHTTP(hls)
	mode := o.storeMode.String()
	if o.queueType == "builtin" {
		mode = "none" // nothing is written anywhere
	}
	lg.notice.Log(context.Background(), server.LevelNotice, "gearmand started",
		"version", server.Version, "listen", strings.Join(addrs, ","), "pid", os.Getpid(),
		"queue", o.queueType, "store", storeWhere(o), "store_mode", mode, "verbose", server.LevelName(o.level))
	return p, nil
}

// wait serves until a signal or the server itself ends it, and returns the
// exit status.
//
//   - The first SIGTERM or SIGINT stops gracefully (server.Shutdown): no
//     new connections, no job handed out, running jobs finish within
//     --shutdown-timeout, queued background jobs stay stored for the next
//     start. A second one stops at once.
//   - SIGUSR1 stops once no job is left (gearmand's graceful stop,
//     server.ShutdownWhenEmpty); a SIGTERM or SIGINT after it moves on to
//     the graceful stop, a second one to the immediate stop.
//   - SIGHUP reopens the log file and reloads the --ssl files.
//   - The admin commands `shutdown` and `shutdown graceful` stop the
//     server as Close and Shutdown do.
//
// Every stop ends by flushing the store's committer, so that acknowledged
// jobs are stored. The status is 0 for a stop that was asked for, and 1
// when the server stopped on its own (its store was taken over by another
// server, a listener failed) or could not store every acknowledged job.
func (p *process) wait(sigs <-chan os.Signal) int {
	ctx := context.Background()
	const (
		serving   = iota
		whenEmpty // SIGUSR1 received
		graceful  // SIGTERM or SIGINT received
	)
	stage := serving
	for {
		select {
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				p.log.reopen()
				p.reloadTLS()
			case sig == syscall.SIGUSR1:
				if stage == serving {
					stage = whenEmpty
					p.log.notice.Log(ctx, server.LevelNotice, "stopping once no jobs are left", "signal", "SIGUSR1")
					go p.srv.ShutdownWhenEmpty(ctx)
				}
			case stage < graceful:
				stage = graceful
				p.log.notice.Log(ctx, server.LevelNotice, "stopping", "signal", signalName(sig), "graceful", true,
					"shutdown_timeout", p.shutdownTimeout, "hint", "signal again to stop at once")
				go p.srv.Shutdown(ctx)
			default:
				p.log.notice.Log(ctx, server.LevelNotice, "stopping at once", "signal", signalName(sig))
				return p.closeServer()
			}
		case <-p.srv.Done():
			if err := p.srv.Err(); err != nil {
				p.log.logger.Log(ctx, server.LevelFatal, "stopping: this server no longer owns its store", "err", err)
				p.closeServer()
				return 1
			}
			if stage == serving {
				p.log.notice.Log(ctx, server.LevelNotice, "stopping: the server was shut down")
			}
			return p.closeServer()
		case err := <-p.serveErr:
			p.log.logger.Log(ctx, server.LevelFatal, "stopping: cannot accept connections", "err", err)
			p.closeServer()
			return 1
		}
	}
}

// closeServer closes the server, waiting for its connections to end and
// its committer to flush (bounded), and returns 1 if not every
// acknowledged job could be stored, else 0.
func (p *process) closeServer() int {
	if err := p.srv.Close(); err != nil {
		p.log.logger.Error("stopping: not every acknowledged job could be stored", "err", err)
		return 1
	}
	return 0
}

// reloadTLS re-reads the --ssl files, if any. On failure the previous
// certificate stays in use and the error is logged.
func (p *process) reloadTLS() {
	if p.tls == nil {
		return
	}
	if err := p.tls.Reload(); err != nil {
		p.log.logger.Error("reloading the TLS files failed; still serving the previous certificate", "err", err)
		return
	}
	p.log.notice.Log(context.Background(), server.LevelNotice, "TLS files reloaded", certificateAttrs(p.tls.Leaf())...)
}

// logStoreWarnings logs, at start, how the store's own settings can lose
// acknowledged jobs (store.Warner), so that it is seen whatever the log
// level.
func (p *process) logStoreWarnings(ctx context.Context) {
	w, ok := p.store.(store.Warner)
	if !ok {
		return
	}
	for _, line := range w.Warnings(ctx) {
		p.log.notice.Warn(line)
	}
}

// stop removes the pid file and closes the log.
func (p *process) stop() {
	p.stopWeb()
	if p.store != nil {
		if err := p.store.Close(); err != nil {
			p.log.logger.Error("closing the store", "err", err)
		}
	}
	p.removePidFile()
	p.log.notice.Log(context.Background(), server.LevelNotice, "gearmand stopped")
	p.log.close()
}

func (p *process) removePidFile() {
	if p.pidFile == "" {
		return
	}
	if err := os.Remove(p.pidFile); err != nil {
		p.log.logger.Warn("could not remove the pid file", "err", err)
	}
	p.pidFile = ""
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}

// setFileLimit sets the soft RLIMIT_NOFILE to n, raising the hard limit
// too when it is lower (which needs root).
func setFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = n
	lim.Max = max(lim.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// switchUser drops root for account: its groups, then its group, then its
// user id, in the only order that works.
func switchUser(account *user.User) error {
	uid, err := strconv.Atoi(account.Uid)
	if err != nil {
		return fmt.Errorf("user id %q: %w", account.Uid, err)
	}
	gid, err := strconv.Atoi(account.Gid)
	if err != nil {
		return fmt.Errorf("group id %q: %w", account.Gid, err)
	}
	gids := []int{gid}
	if ids, err := account.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil && g != gid {
				gids = append(gids, g)
			}
		}
	}
	if err := syscall.Setgroups(gids); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// storeWhere says where the store is, for the start-up log line, without
// the password a connection string may hold.
func storeWhere(o *options) string {
	switch {
	case o.store.Where != "":
		return o.store.Where
	case o.store.Path != "":
		return o.store.Path
	case o.store.DSN != "":
		where := o.store.DSN
		if u, err := url.Parse(where); err == nil && u.User != nil {
			where = u.Redacted()
		} else if strings.Contains(where, "password") {
			where = "(connection string hidden: it holds a password)"
		}
		return where + " namespace " + o.store.Namespace
	}
	return "memory"
}

// checkStoreTimeout bounds --check-args's look at the store.
const checkStoreTimeout = 15 * time.Second

// checkStore is --check-args's look at the store, past parsing: what the
// driver can tell without serving and without changing anything (a
// directory it may write in, a server that answers and lets it log in).
func checkStore(o *options) error {
	if o.storeDriver == "" {
		return nil
	}
	d, ok := store.Lookup(o.storeDriver)
	if !ok || d.Check == nil {
		return nil
	}
	so := o.store
	if so.Path != "" {
		var err error
		if so.Path, err = filepath.Abs(so.Path); err != nil {
			return fmt.Errorf("--queue-type=%s: %w", o.queueType, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkStoreTimeout)
	defer cancel()
	if err := d.Check(ctx, so); err != nil {
		return fmt.Errorf("--queue-type=%s: %w", o.queueType, err)
	}
	return nil
}
