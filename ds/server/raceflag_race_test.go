//go:build race

package server_test

// raceEnabled: the race detector multiplies memory use and slows every
// goroutine, so the RSS bounds of the resource tests mean nothing under it.
const raceEnabled = true
