package snapshot

import "encoding/json"

// versionOf digs the version out of a document that failed validation, so
// that last_rejected and config_rejected can name it; "" when unreadable.
func versionOf(doc []byte) string {
	var probe struct {
		Version any `json:"version"`
	}
	if json.Unmarshal(doc, &probe) != nil {
		return ""
	}
	if v, ok := probe.Version.(string); ok {
		return v
	}
	return ""
}
