// Package queue is the in-memory job index and dispatcher of the server:
// functions, their per-priority FIFOs, jobs indexed by handle and by unique,
// sessions (connections acting as clients, workers or both), wake-ups,
// retries, CAN_DO_TIMEOUT and epoch timers, and status.
//
// It is pure logic. It opens no sockets and reads no clock of its own: the
// time comes from Config.Now, and timers fire only when the owner calls
// Tick (TimerChanged says when the next deadline moved earlier). Packets for
// connections are encoded here and handed to each Session's Peer while the
// lock is held, so a reply and the packets other connections cause for the
// same connection keep the order in which they were produced: a client sees
// JOB_CREATED before any WORK_* of that job.
//
// # Semantics
//
// The rules follow gearmand, choosing its master branch where it differs
// from 1.1.20 (see PROTOCOL.md in the team's shared folder):
//
//   - Priority is global across a worker's functions: every HIGH job of any
//     of them before any NORMAL one. Among functions with work at the same
//     priority the choice rotates; within one function and priority, FIFO.
//   - Unique coalescing is per function: "" never coalesces, "-" coalesces on
//     identical non-empty payloads, anything else on the exact bytes while
//     the job is queued or running. A foreground submitter is attached and
//     receives every later WORK_* packet.
//   - A lost worker (disconnect, CANT_DO, RESET_ABILITIES, timeout) puts the
//     job at the tail of its list; JobRetries bounds the runs (negative is
//     unlimited, 0 no retry, N at most N runs), after which clients get
//     WORK_FAIL.
//   - A foreground client leaving abandons its job only when no other client
//     waits and no background submission asked for it. A queued abandoned or
//     cancelled job is removed at once; a running one is "ignored": its
//     worker may finish, the results go nowhere.
//   - Epoch jobs wait in a timer heap and wake sleeping workers when due.
//   - One timeout timer per assigned job, cancelled by any result or requeue.
package queue
