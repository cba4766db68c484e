package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"gearmand/protocol"
	"gearmand/queue"
)

// Admin replies. Listings end with ".\n"; OK/ERR lines of commands that
// change state end with "\r\n", informational "OK <x>" lines with "\n",
// byte for byte as gearmand 1.1.20 sends them.
const (
	replyOK               = "OK\r\n"
	replyUnknownShow      = "ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
	replyUnknownJob       = "ERR UNKNOWN_JOB\r\n"
	replyUnknownError     = "ERR UNKNOWN_ERROR\r\n"
	replyFunctionNotFound = "ERR function not found\r\n"
	replyFunctionBusy     = "ERR there are still connected workers or executing clients\r\n"
	replyTooManyTokens    = "ERR TOO_MANY_ARGUMENTS An+admin+command+takes+at+most+5+space-separated+words\r\n"
	prefixIncomplete      = "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+"
	prefixUnknownCommand  = "ERR UNKNOWN_COMMAND Unknown+server+command"
)

// admin runs one admin text command.
func (c *conn) admin(line []byte) {
	tok, ok := protocol.Fields(line, c.args)
	c.args = tok
	if !ok {
		c.sendText(replyTooManyTokens)
		return
	}
	word := func(i int) string {
		if i < len(tok) {
			return strings.ToLower(string(tok[i]))
		}
		return ""
	}
	if changesState[word(0)] && !AdminPermitted(c.peer, c.verifiedClient, c.srv.cfg.AdminAllow) {
		c.srv.log.Warn("refused an admin command that changes state", "command", word(0), "remote", c.remote)
		c.sendText("ERR PERMISSION_DENIED " + word(0) + "+is+only+accepted+from+loopback,+--admin-allow+networks+or+verified+client+certificates\r\n")
		return
	}
	q := c.srv.queue
	var b bytes.Buffer
	var stop func()
	switch word(0) {
	case "status":
		for _, f := range q.Functions() {
			writeRow(&b, f.Name, f.Total(), f.Running, f.Workers)
		}
		b.WriteString(".\n")
	case "prioritystatus":
		for _, f := range q.Functions() {
			writeRow(&b, f.Name, f.Queued[queue.High], f.Queued[queue.Normal], f.Queued[queue.Low], f.Workers)
		}
		b.WriteString(".\n")
	case "workers":
		for _, w := range q.Workers() {
			b.WriteString(strconv.Itoa(w.FD))
			b.WriteByte(' ')
			b.WriteString(w.Addr)
			b.WriteByte(' ')
			b.WriteString(w.ClientID)
			b.WriteString(" :")
			for _, f := range w.Functions {
				b.WriteByte(' ')
				b.WriteString(f)
			}
			b.WriteByte('\n')
		}
		b.WriteString(".\n")
	case "maxqueue":
		c.maxQueue(&b, tok)
	case "version":
		b.WriteString("OK " + Version + "\n")
	case "getpid":
		b.WriteString("OK " + strconv.Itoa(os.Getpid()) + "\n")
	case "verbose":
		b.WriteString("OK " + c.srv.cfg.LogLevel + "\n")
	case "show":
		switch {
		case len(tok) == 1:
			b.WriteString(prefixUnknownCommand + string(tok[0]) + "\r\n")
		case len(tok) == 2 && word(1) == "jobs":
			for _, j := range q.Jobs() {
				writeRow(&b, j.Handle, int(j.Retries), int(bool01(j.Ignore)), int(bool01(j.Persisted)))
			}
			b.WriteString(".\n")
		case len(tok) == 3 && word(1) == "unique" && word(2) == "jobs":
			for _, j := range q.Jobs() {
				b.WriteString(j.Unique)
				b.WriteByte('\n')
			}
			b.WriteString(".\n")
		default:
			b.WriteString(replyUnknownShow)
		}
	case "cancel":
		switch {
		case len(tok) < 3:
			b.WriteString(prefixUnknownCommand + string(tok[0]) + "\r\n")
		case len(tok) > 3 || word(1) != "job":
			b.WriteString(replyUnknownError)
		case q.Cancel(string(tok[2])):
			c.srv.log.Info("job cancelled by admin", "handle", string(tok[2]), "remote", c.remote)
			b.WriteString(replyOK)
		default:
			b.WriteString(replyUnknownJob)
		}
	case "create":
		if len(tok) != 3 || word(1) != "function" {
			b.WriteString(prefixIncomplete + "create\r\n")
			break
		}
		q.CreateFunction(string(tok[2]))
		b.WriteString(replyOK)
	case "drop":
		if len(tok) != 3 || word(1) != "function" {
			b.WriteString(prefixIncomplete + "drop\r\n")
			break
		}
		switch err := q.DropFunction(string(tok[2])); {
		case err == nil:
			b.WriteString(replyOK)
		case errors.Is(err, queue.ErrFunctionBusy):
			b.WriteString(replyFunctionBusy)
		default:
			b.WriteString(replyFunctionNotFound)
		}
	case "shutdown":
		stop = c.shutdown(&b, tok)
	default:
		b.WriteString(prefixUnknownCommand + string(tok[0]) + "\r\n")
	}
	c.sendText(b.String())
	if stop != nil {
		// The OK goes out before the stop can close this connection.
		c.flush()
		go stop()
	}
}

// writeRow writes name and numbers separated by tabs, ending in "\n".
func writeRow(b *bytes.Buffer, name string, nums ...int) {
	b.WriteString(name)
	for _, n := range nums {
		b.WriteByte('\t')
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte('\n')
}

// maxQueue handles `maxqueue FUNC [ALL | HIGH NORMAL [LOW]]`. Numbers parse
// like C atoi; negatives mean unlimited. An unknown function is not created
// and the reply is still OK, as in gearmand.
func (c *conn) maxQueue(b *bytes.Buffer, tok [][]byte) {
	if len(tok) < 2 {
		b.WriteString(prefixIncomplete + "maxqueue\r\n")
		return
	}
	var limits [3]int
	n := func(i int) int {
		v, _ := strtoll(tok[i])
		return int(max(min(v, 1<<31-1), 0))
	}
	switch len(tok) {
	case 3:
		limits = [3]int{n(2), n(2), n(2)}
	case 4:
		limits = [3]int{n(2), n(3), 0}
	case 5:
		limits = [3]int{n(2), n(3), n(4)}
	}
	c.srv.queue.SetMaxQueue(string(tok[1]), limits)
	b.WriteString(replyOK)
}

// shutdown handles `shutdown` (Close: at once) and `shutdown graceful`
// (Shutdown: running jobs finish, queued ones wait for the next start);
// admin has checked that the connection may. It writes the reply
// and returns the stop to run once the reply is flushed, or nil.
func (c *conn) shutdown(b *bytes.Buffer, tok [][]byte) func() {
	graceful := len(tok) == 2 && strings.EqualFold(string(tok[1]), "graceful")
	if len(tok) > 2 || len(tok) == 2 && !graceful {
		b.WriteString(prefixIncomplete + "shutdown\r\n")
		return nil
	}
	c.srv.log.Log(context.Background(), LevelNotice, "shutdown requested by admin command", "graceful", graceful, "remote", c.remote)
	b.WriteString(replyOK)
	if graceful {
		return func() { c.srv.Shutdown(context.Background()) }
	}
	return func() { c.srv.Close() }
}

// plusEscape writes spaces as '+', as gearmand's ERR lines do.
func plusEscape(s string) string { return strings.ReplaceAll(s, " ", "+") }

// changesState holds the admin commands that change the server's state.
// Only connections AdminPermitted allows may run them; every other admin
// command only reads (`verbose` included: it cannot set the level).
var changesState = map[string]bool{
	"shutdown": true,
	"cancel":   true, // cancel job
	"create":   true, // create function
	"drop":     true, // drop function
	"maxqueue": true,
}

// AdminPermitted reports whether a connection from peer may run the admin
// commands that change state: it may when peer is a loopback address, when
// it presented a TLS client certificate that verified against the server's
// CA (verifiedClient), or when peer lies in one of the allow networks. An
// invalid peer (not an IP connection) is permitted only by a certificate.
func AdminPermitted(peer netip.Addr, verifiedClient bool, allow []netip.Prefix) bool {
	if verifiedClient {
		return true
	}
	if !peer.IsValid() {
		return false
	}
	peer = peer.Unmap().WithZone("")
	if peer.IsLoopback() {
		return true
	}
	for _, p := range allow {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// ParseAdminAllow parses a comma-separated list of networks in CIDR
// notation ("10.0.0.0/8", "fd00::/8") or bare addresses (one host: /32 or
// /128) into prefixes for Config.AdminAllow. Spaces around entries are
// ignored; "" is the empty list. IPv4-mapped IPv6 entries are read as the
// IPv4 ones they map, since peers are compared unmapped.
func ParseAdminAllow(list string) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("empty entry in %q", list)
		}
		var p netip.Prefix
		if strings.Contains(entry, "/") {
			var err error
			if p, err = netip.ParsePrefix(entry); err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR network", entry)
			}
		} else {
			a, err := netip.ParseAddr(entry)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an address or CIDR network", entry)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q: an IPv4-mapped network needs at least 96 bits", entry)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
