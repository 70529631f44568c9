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
		if json.Unmarshal([]byte(line), &ev) != nil || ev["msg"] != msg {
			continue
		}
		match := true
		for k, v := range fields {
			if ev[k] != v {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}
