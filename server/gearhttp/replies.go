package gearhttp

import (
	"encoding/binary"
	"slices"
	"sync"

	"gearmand/protocol"
)

// replies is the queue.Peer of one HTTP request's session: it keeps copies
// of the packets the queue sends (JOB_CREATED, ERROR, WORK_*) until the
// request's goroutine takes them, and signals ready when there are some.
// It never blocks. Past limit bytes not yet taken it drops everything and
// reports an overflow, which ends the request.
type replies struct {
	limit int
	ready chan struct{} // capacity 1: "take may return something"

	mu struct {
		sync.Mutex
		frames   [][]byte
		size     int
		overflow bool
	}
}

func newReplies(limit int) *replies {
	return &replies{limit: limit, ready: make(chan struct{}, 1)}
}

// Send implements queue.Peer. The queue calls it with its lock held and
// reuses frame, so it is copied.
func (r *replies) Send(frame []byte) {
	r.mu.Lock()
	switch {
	case r.mu.overflow:
	case r.mu.size+len(frame) > r.limit:
		r.mu.overflow = true
		r.mu.frames, r.mu.size = nil, 0
	default:
		r.mu.frames = append(r.mu.frames, slices.Clone(frame))
		r.mu.size += len(frame)
	}
	r.mu.Unlock()
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// SendShared implements queue.Peer: the packet is stored whole.
func (r *replies) SendShared(head, data []byte) {
	r.Send(append(slices.Clip(head), data...))
}

// take returns the packets received since the last call, and whether more
// than limit bytes arrived before they could be taken.
func (r *replies) take() (frames [][]byte, overflow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	frames, r.mu.frames, r.mu.size = r.mu.frames, nil, 0
	return frames, r.mu.overflow
}

// packet is one decoded server packet.
type packet struct {
	typ  protocol.Type
	args [][]byte
}

// decode splits a frame the queue encoded (a 12-byte header and its
// payload) into its type and arguments. ok is false for a frame that is not
// one whole response packet, which the queue never sends.
func decode(frame []byte) (p packet, ok bool) {
	if len(frame) < protocol.HeaderSize {
		return p, false
	}
	p.typ = protocol.Type(binary.BigEndian.Uint32(frame[4:8]))
	payload := frame[protocol.HeaderSize:]
	if string(frame[:4]) != "\x00RES" || !p.typ.Valid() || int(binary.BigEndian.Uint32(frame[8:12])) != len(payload) {
		return p, false
	}
	p.args, ok = protocol.Split(p.typ, payload, nil)
	return p, ok
}

// arg returns argument i, or nil.
func (p packet) arg(i int) []byte {
	if i < len(p.args) {
		return p.args[i]
	}
	return nil
}
