// Package all registers every store driver with package store: a program
// that imports it for its side effects can open any queue type by name.
// The binary imports it; nothing below cmd/ does. A new driver is added
// here and nowhere else.
package all

import (
	_ "gearmand/store/bolt"
	_ "gearmand/store/mysql"
	_ "gearmand/store/pebble"
	_ "gearmand/store/postgres"
	_ "gearmand/store/redis"
	_ "gearmand/store/refused"
	_ "gearmand/store/sqlite"
)
