package main

// Every store registers itself, with its --queue-type names and flags,
// with package store when imported; store/all imports them all. Only the
// binary imports drivers (ARCHITECTURE.md).
import _ "gearmand/store/all"
