//go:build race

package parity

// The suite was built with -race, so the Go router it builds is too.
func init() { raceEnabled = true }
