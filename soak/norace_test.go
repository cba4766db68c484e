//go:build !race

package soak

// raceDetector is set when the test binary runs under -race.
const raceDetector = false
