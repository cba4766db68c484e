package main

// The stores --queue-type can open register themselves with package store
// when imported. Only the binary imports drivers (ARCHITECTURE.md).
import (
	_ "gearmand/store/bolt"
	_ "gearmand/store/pebble"
	_ "gearmand/store/postgres"
	_ "gearmand/store/redis"
)
