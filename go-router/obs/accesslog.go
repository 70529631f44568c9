// Package obs is go-router's observability: the access log (one JSON line
// per request, contract section 4) and the Prometheus series of section 6.
// It knows nothing of the request path: the router hands it a Line per
// request and counts through PlacementMetrics.
package obs

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"

	"cellbench/go-router/engine"
	"cellbench/internal/jsonstr"
)

// accessLogFlushEvery bounds how long a line waits in the buffer.
const accessLogFlushEvery = 100 * time.Millisecond

// AccessLog writes one JSON line per request (contract section 4). Lines
// are encoded by hand into a stack buffer and appended to a buffered
// writer under a mutex; a background flush bounds their delay. log/slog
// was measured against this encoder (BenchmarkAccessLog*): see the report.
type AccessLog struct {
	mu sync.Mutex
	// scratch is the line being encoded; encoding under mu keeps the
	// request path free of allocations and lets lines reuse tsPrefix.
	scratch []byte
	// tsPrefix is the "2006-01-02T15:04:05" text of second tsSecond.
	tsPrefix []byte
	tsSecond int64
	w        *bufio.Writer
	out      io.Writer
	closer   io.Closer // nil for stdout
	stop     chan struct{}
	done     chan struct{}
}

// NewAccessLog writes to out; closer (may be nil) is closed by Close.
func NewAccessLog(out io.Writer, closer io.Closer) *AccessLog {
	l := &AccessLog{scratch: make([]byte, 0, 1024), w: bufio.NewWriterSize(out, 64<<10), out: out, closer: closer, stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushLoop()
	return l
}

func (l *AccessLog) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(accessLogFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			_ = l.w.Flush()
			l.mu.Unlock()
		}
	}
}

// Close flushes what is buffered and closes the file.
func (l *AccessLog) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.w.Flush()
	if l.closer != nil {
		if cerr := l.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Line is one access-log line (contract section 4); "" fields are logged
// as empty strings.
type Line struct {
	End            time.Time // the line's ts
	RequestID      string
	Method         string
	Path           string
	RoutingKey     string
	Placement      string
	RouteReason    string
	FailoverReason string
	Upstream       string // endpoint of the serving placement once attempted
	Status         int
	Attempts       int
	Error          string
	Duration       time.Duration
	UpstreamTime   time.Duration // last attempt: request sent to response head
	BytesOut       int64
	ConfigVersion  string
}

// Write logs one line.
func (l *AccessLog) Write(line *Line) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := append(l.scratch[:0], `{"ts":"`...)
	b = l.appendTimestamp(b, line.End.UTC())
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = jsonstr.Append(b, line.RequestID)
	b = append(b, `,"method":`...)
	b = jsonstr.Append(b, line.Method)
	b = append(b, `,"path":`...)
	b = jsonstr.Append(b, line.Path)
	b = append(b, `,"routing_key":`...)
	b = jsonstr.Append(b, line.RoutingKey)
	b = append(b, `,"placement":`...)
	b = jsonstr.Append(b, line.Placement)
	b = append(b, `,"route_reason":`...)
	b = jsonstr.Append(b, line.RouteReason)
	b = append(b, `,"failover_reason":`...)
	b = jsonstr.Append(b, line.FailoverReason)
	b = append(b, `,"upstream":`...)
	b = jsonstr.Append(b, line.Upstream)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(line.Status), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(line.Attempts), 10)
	b = append(b, `,"error":`...)
	b = jsonstr.Append(b, line.Error)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, Milliseconds(line.Duration), 'f', 3, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, Milliseconds(line.UpstreamTime), 'f', 3, 64)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, line.BytesOut, 10)
	b = append(b, `,"config_version":`...)
	b = jsonstr.Append(b, line.ConfigVersion)
	b = append(b, `,"router":"`+engine.RouterName+`"}`+"\n"...)
	_, _ = l.w.Write(b)
	l.scratch = b
}

// Milliseconds is d in milliseconds, as the log and Server-Timing give it.
func Milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// appendTimestamp appends t (UTC) as RFC 3339 with milliseconds. The part
// up to the seconds is formatted once per second: time.AppendFormat was
// the largest cost of a log line.
func (l *AccessLog) appendTimestamp(b []byte, t time.Time) []byte {
	if sec := t.Unix(); sec != l.tsSecond || l.tsPrefix == nil {
		l.tsPrefix = t.AppendFormat(l.tsPrefix[:0], "2006-01-02T15:04:05")
		l.tsSecond = sec
	}
	b = append(b, l.tsPrefix...)
	milli := t.Nanosecond() / int(time.Millisecond)
	return append(b, '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z')
}
