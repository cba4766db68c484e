// Package gearhttp serves gearmand's HTTP protocol (`gearmand -r http
// --http-port 8080`) over a queue.Queue, on net/http: each request that
// submits a job becomes one short-lived queue session, as if a binary client
// had connected, sent one SUBMIT_JOB* and waited for its answer.
//
// It keeps what HTTP clients of gearmand rely on (the X-Gearman-* request
// headers and the X-Gearman-Job-Handle response header) and fixes what
// gearmand 1.1.20's plugin gets wrong: HTTP/1.1 with keep-alive and chunked
// bodies, percent-decoded function names, real error statuses, WORK_DATA
// joined into the body, and a way to ask for a job's status.
//
// # Submitting a job
//
//	POST /<function> HTTP/1.1      (PUT and GET too; GET submits an empty body)
//	X-Gearman-Unique: <unique>      optional, at most 64 bytes
//	X-Gearman-Background: true      optional: true/false, yes/no, 1/0
//	X-Gearman-Priority: high        optional: high, normal or low
//	Content-Length: <n>
//
//	<job data>
//
// The function is the request path, percent-decoded, without its leading
// slashes and without the query string, which is ignored: POST /img%2Fresize
// submits to "img/resize". An empty function, or one holding a NUL byte, is
// 400. The body is the job's data, bounded so that the SUBMIT_JOB packet
// (function, unique and data) fits Config.MaxBodySize, the server's
// --max-packet-size; a larger body is 413.
//
// Without X-Gearman-Unique a job never coalesces with another (gearmand's
// plugin defaulted to "-", which coalesces identical bodies; send
// "X-Gearman-Unique: -" for that). With it, submissions of the same function
// and unique share one job, as on the binary protocol. A header given twice,
// or a value outside the lists above, is 400. A header line that HTTP does
// not allow (a name in quotes, no colon, control characters) is ignored, as
// gearmand ignores it, unless it mentions Content-Length or
// Transfer-Encoding (see lenient.go).
//
// Responses carry X-Gearman-Job-Handle once the job exists and
// X-Gearman-Command, the packet that decided the answer:
//
//	background   200, JOB_CREATED, empty body; sent only once the job is
//	             durable in the store, as JOB_CREATED is on the binary protocol
//	WORK_COMPLETE 200, body = every WORK_DATA chunk in order, then the result
//	WORK_FAIL     500, body says the job failed
//	WORK_EXCEPTION 500, body = the exception data (HTTP sessions always have
//	             the exceptions option on)
//	ERROR         503 for QUEUE_ERROR (the store failed, or the function's
//	             queue is full), 500 for any other code; body "CODE: text"
//
// A foreground response also carries the last WORK_STATUS (when its numbers
// are decimal) as "X-Gearman-Status: <numerator>/<denominator>".
// WORK_WARNING packets are not passed on: their bytes are arbitrary and
// would not fit a header. The response, WORK_DATA included, is held in
// memory until the job ends and is bounded by Config.MaxResponseSize; a job
// whose output grows past it ends the request with 502, which then leaves
// the job as a disconnecting client would.
//
// A client that goes away (its request context ends) leaves the queue like
// a binary client that disconnects: a foreground job nobody else waits for
// is abandoned; a background job is never dropped.
// While it waits, a request is listed by the admin `workers` command as a
// connection with file descriptor -1.
//
// # Asking for a job's status
//
//	GET /status/<handle>   (HEAD too)
//
// answers GET_STATUS as JSON: 200 for a job the server holds, 404 once it
// is unknown (finished jobs are forgotten at once):
//
//	{"handle":"H:host:12","known":true,"running":true,"numerator":3,"denominator":4}
//
// The /status/ prefix is therefore not available as a function name over
// HTTP. Any method other than GET, HEAD, POST and PUT is 405, and HEAD is
// 405 outside /status/ (it must not submit jobs, as it did in gearmand).
package gearhttp
