//go:build race

package viewtest

// raceEnabled is true when the tests run under the race detector, which
// slows the pure-Go SQLite engine about tenfold: the suite then runs every
// case on shorter histories.
const raceEnabled = true
