// Package protocol is the Gearman wire format: packet types and how each
// splits its payload into arguments, a resumable framing Reader that tells
// binary packets from admin text lines per message, packet encoding, and
// admin line tokenising.
//
// It does no I/O beyond the io.Reader it is handed and holds no connection
// state beyond the Reader's parse position, so both the server and the
// client use it.
//
// # Framing
//
// A binary packet is a 12-byte header (magic, type, payload length) and a
// payload of NUL-separated fields. How many fields a type has, and whether
// an opaque data blob follows them, comes from a per-type table (see
// Type.Layout): the terminator search never leaves the declared payload, so
// a packet missing a NUL is an INVALID_PACKET error instead of swallowing
// the next packet as gearmand 1.1.20 does.
//
// A message whose first byte is not NUL is an admin text line ending in
// "\n" (one "\r" before it is dropped).
package protocol
