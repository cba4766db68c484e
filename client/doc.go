// Package client is a Gearman client and worker: a Client submits jobs and
// queries them over one pipelined connection; a Worker registers functions
// and runs the jobs the server assigns to it, one at a time.
//
// It speaks the binary protocol of gearmand 1.1.x (framing comes from
// package protocol) and works with this module's server and with the C
// gearmand alike.
//
// # Client
//
// A Client owns one TCP connection and is safe for concurrent use. Every
// request that the server answers (SUBMIT_*, GET_STATUS, GET_STATUS_UNIQUE,
// ECHO_REQ, OPTION_REQ) joins a FIFO of waiting calls in the same critical
// section that queues its bytes for writing, and the server answers requests in order, so a
// single reader goroutine hands each reply (JOB_CREATED, STATUS_RES,
// STATUS_RES_UNIQUE, ECHO_RES, OPTION_RES or ERROR) to the call at the head
// of the FIFO:
//
//	callers ──append──▶ buffer ──write──▶ conn ──▶ server
//	   │                                               │
//	   └── FIFO of calls ◀── reader ◀──────────────────┘ replies, in order
//	                          │
//	                          └──▶ tasks by handle ◀── WORK_* packets
//
// Writes are batched: requests are appended to a buffer, and the caller
// that finds no write under way writes it, including whatever other callers
// append meanwhile, until it is empty. Requests issued while a write is in
// progress therefore share the next write, so many goroutines sharing a
// Client cost few system calls, and a lone request is written at once.
//
// A foreground job (Submit, SubmitReduce, Call) is a Task. The reader
// registers the Task under its handle while handling JOB_CREATED, before it
// reads anything else, so WORK_DATA, WORK_WARNING, WORK_STATUS and the final
// WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION are never missed. The reader
// never waits for callers: updates queue on the Task.
//
// Errors: an ERROR packet is returned to the call it answers as a
// *ServerError. WORK_FAIL surfaces as ErrJobFailed and WORK_EXCEPTION as an
// *Exception. When the connection breaks, every waiting call and Task fails
// with an error wrapping both ErrConnectionLost and the cause; after Close
// they fail with ErrClosed. A context that ends makes its caller return
// ctx.Err() while the reply, when it comes, is still read and dropped, so
// the connection stays in step.
//
// # Worker
//
// A Worker owns one connection. Register (CAN_DO) or RegisterTimeout
// (CAN_DO_TIMEOUT) functions, then call Work, which loops: GRAB_JOB_UNIQ
// (GRAB_JOB_ALL after SetGrabAll), run the Handler for a JOB_ASSIGN_*, send
// WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION; on NO_JOB send PRE_SLEEP and
// wait for the server's NOOP (or, as libgearman does, a poll interval, since
// gearmand 1.1.20 misses some wake-ups). A handler reports progress through
// its Job's SendData, SendWarning and SendStatus. Run several Workers for
// parallelism.
//
// # TLS
//
// Dial and NewWorker take WithTLS(cfg) to reach a server started with
// --ssl; the handshake completes within Dial's context. NewClient and
// NewWorkerConn run over any net.Conn the caller set up, a *tls.Conn
// included.
//
// # Example
//
//	ctx := context.Background()
//	w, err := client.NewWorker(ctx, "127.0.0.1:4730")
//	if err != nil { ... }
//	defer w.Close()
//	w.Register("reverse", func(ctx context.Context, job *client.Job) ([]byte, error) {
//		out := slices.Clone(job.Data)
//		slices.Reverse(out)
//		return out, nil
//	})
//	go w.Work(ctx)
//
//	c, err := client.Dial(ctx, "127.0.0.1:4730")
//	if err != nil { ... }
//	defer c.Close()
//	out, err := c.Call(ctx, "reverse", "", []byte("hello"), client.Normal)
//	// out is "olleh"
//
// See also the package examples.
package client
