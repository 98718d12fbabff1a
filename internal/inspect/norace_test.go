//go:build !race

package inspect

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
