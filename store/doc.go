// Package store is where background jobs become durable: the Record type,
// the Store interface that drivers implement, sentinel errors, a registry of
// drivers by name, the key/value encoding the embedded drivers share, and
// the Committer that sits between the queue and a driver.
//
// # Data flow
//
// The queue hands each new background job to the Committer as a Record.
// The Committer gathers every record that arrives while the previous Apply
// is in flight and writes them in one batch (group commit). In write-through
// mode (the default) the job becomes visible to workers, and its submitter
// gets JOB_CREATED, only when OnCommit reports the batch durable; a store
// error instead reaches the submitter as ERROR QUEUE_ERROR and no job is
// created in memory. (A networked store can commit a batch whose answer
// the outage then cut off: such a job is in the store and runs after the
// next restart, at least once, though its submitter was refused.)
//
// The Committer bounds the wait (CommitterConfig.Timeout, the server's
// --store-timeout): an add not durable in time is reported as failed with
// ErrTimeout whatever the store does; one still queued is never written,
// and one whose Apply lands after all is handed back through OnLate, so
// that the job it stores is run rather than left unknown. While a store
// fails, retries carry at most a thousand operations, so that a store that
// needs room to delete gets through its deletes. CommitterConfig.Admit
// lets the server refuse new adds (the SpaceGuard, --store-min-free) while
// deletes and updates go on. Drivers kept in a local file or directory say
// where through the Pather capability.
//
// ErrLocked, another server having taken the store over, is final: the
// Committer reports it to the submitters and retries nothing of the batch. In write-behind mode JOB_CREATED is sent at once and the
// Committer flushes on an interval, so a crash loses at most one interval;
// a job that finishes before its flush is never written.
//
// Finished jobs are deleted through the same batches. Delivery is at least
// once: a crash between a job's completion and its delete's commit runs the
// job again after restart.
//
// Drivers (store/bolt, store/pebble, ...) register themselves by name and
// are imported only by the binary's wiring.
package store
