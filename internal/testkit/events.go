package testkit

import (
	"encoding/json"
	"strings"
)

// HasEvent reports whether log, JSON lines as log/slog's JSON handler
// writes them, holds an event with msg and all the given string fields.
func HasEvent(log, msg string, fields map[string]string) bool {
	for _, line := range strings.Split(log, "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["msg"] == msg && EventMatches(ev, fields) {
			return true
		}
	}
	return false
}

// EventMatches reports whether the decoded event ev has every one of
// fields, each equal (==) to its value.
func EventMatches[V comparable](ev map[string]any, fields map[string]V) bool {
	for k, v := range fields {
		if ev[k] != any(v) {
			return false
		}
	}
	return true
}
