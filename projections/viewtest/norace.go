//go:build !race

package viewtest

// raceEnabled is true when the tests run under the race detector; see
// race.go.
const raceEnabled = false
