package metrics

import "time"

func rec(startMs, latMs int, code uint16) Record {
	return Record{Start: time.Duration(startMs) * time.Millisecond, Latency: time.Duration(latMs) * time.Millisecond, Code: code}
}
