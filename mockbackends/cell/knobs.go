package cell

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Query parameters a client sets to shape one answer. Every other query
// parameter is ignored (and echoed), so callers may add their own.
const (
	KnobStatus       = "status"
	KnobDelayMs      = "delay_ms"
	KnobSize         = "size"
	KnobChunks       = "chunks"
	KnobChunkDelayMs = "chunk_delay_ms"
	KnobClose        = "close"
)

// Bounds on knob values. They keep a typo from parking a goroutine for a
// day or asking for an exabyte, while leaving room for any benchmark.
const (
	MaxDelayMs  = 3_600_000 // one hour
	MaxSize     = 1 << 36   // 64 GiB
	MaxChunks   = 1_000_000
	minStatus   = 101 // the brief's range is 100 < CODE < 600
	maxStatus   = 599
	switchProto = 101
)

// Knobs is the parsed form of a request's query knobs. Zero values mean
// "not set" except where a Has flag says otherwise.
type Knobs struct {
	Status       int   // 0: not set
	DelayMs      int64 // 0: no delay
	Size         int64
	HasSize      bool // size=0 (an empty body) differs from no size
	Chunks       int64
	ChunkDelayMs int64
	Close        bool
}

// KnobError is an invalid knob value; the cell answers it with 400 bad_knob.
type KnobError struct {
	Knob    string
	Message string
}

func (e *KnobError) Error() string { return e.Knob + ": " + e.Message }

// ParseKnobs reads the knobs from a raw query string. Only knob parameters
// must be well-formed: any other parameter, even a malformed one, is left
// alone and echoed, since what a router does with odd queries is exactly
// what tests want to see.
func ParseKnobs(rawQuery string) (Knobs, error) {
	var k Knobs
	if rawQuery == "" {
		return k, nil
	}
	q, err := scanKnobs(rawQuery)
	if err != nil {
		return k, err
	}
	if v, ok := q.get(KnobStatus); ok {
		n, err := intKnob(KnobStatus, v, minStatus, maxStatus)
		if err != nil {
			return k, err
		}
		if err := checkStatus(int(n)); err != nil {
			return k, &KnobError{Knob: KnobStatus, Message: err.Error()}
		}
		k.Status = int(n)
	}
	if v, ok := q.get(KnobDelayMs); ok {
		if k.DelayMs, err = intKnob(KnobDelayMs, v, 0, MaxDelayMs); err != nil {
			return k, err
		}
	}
	if v, ok := q.get(KnobSize); ok {
		if k.Size, err = intKnob(KnobSize, v, 0, MaxSize); err != nil {
			return k, err
		}
		k.HasSize = true
	}
	if v, ok := q.get(KnobChunks); ok {
		if k.Chunks, err = intKnob(KnobChunks, v, 1, MaxChunks); err != nil {
			return k, err
		}
	}
	if v, ok := q.get(KnobChunkDelayMs); ok {
		if k.Chunks == 0 {
			return k, &KnobError{Knob: KnobChunkDelayMs, Message: "needs chunks"}
		}
		if k.ChunkDelayMs, err = intKnob(KnobChunkDelayMs, v, 0, MaxDelayMs); err != nil {
			return k, err
		}
	}
	if k.Chunks > 0 && k.HasSize && k.Size < k.Chunks {
		return k, &KnobError{Knob: KnobSize, Message: fmt.Sprintf("size %d is smaller than chunks %d; every chunk must carry at least one byte", k.Size, k.Chunks)}
	}
	if v, ok := q.get(KnobClose); ok {
		switch v {
		case "1":
			k.Close = true
		case "0":
		default:
			return k, &KnobError{Knob: KnobClose, Message: fmt.Sprintf("%q must be 0 or 1", v)}
		}
	}
	return k, nil
}

// knobNames are the knobs in the slot order of knobValues.
var knobNames = [...]string{KnobStatus, KnobDelayMs, KnobSize, KnobChunks, KnobChunkDelayMs, KnobClose}

// knobValues holds the raw value of each knob found in a query.
type knobValues struct {
	value [len(knobNames)]string
	found [len(knobNames)]bool
}

func (q *knobValues) get(name string) (string, bool) {
	slot := slices.Index(knobNames[:], name)
	return q.value[slot], q.found[slot]
}

// scanKnobs picks the knob parameters out of a query without building a
// url.Values map: this runs on every request, and most queries carry no
// knob at all. Knob names and values are decoded as url.ParseQuery would.
func scanKnobs(rawQuery string) (knobValues, error) {
	var q knobValues
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				continue // not a knob's name, whatever it is
			}
		}
		slot := slices.Index(knobNames[:], key)
		if slot < 0 {
			continue
		}
		// A repeated knob is ambiguous, so an error rather than first-wins.
		if q.found[slot] {
			return q, &KnobError{Knob: key, Message: "given more than once, want once"}
		}
		if strings.ContainsAny(value, "%+") {
			decoded, err := url.QueryUnescape(value)
			if err != nil {
				return q, &KnobError{Knob: key, Message: fmt.Sprintf("malformed escape in %q", value)}
			}
			value = decoded
		}
		q.value[slot], q.found[slot] = value, true
	}
	return q, nil
}

func intKnob(name, v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &KnobError{Knob: name, Message: fmt.Sprintf("%q must be an integer from %d to %d", v, lo, hi)}
	}
	return n, nil
}

// checkStatus applies the rules shared by the status knob and the status
// chaos field.
func checkStatus(code int) error {
	if code < minStatus || code > maxStatus {
		return fmt.Errorf("%d must be from %d to %d", code, minStatus, maxStatus)
	}
	// RFC 9110 §15.2.2: a server must not switch protocols unless the client
	// asked for it with Upgrade; a bare 101 would be a protocol violation,
	// not a useful fault.
	if code == switchProto {
		return fmt.Errorf("101 Switching Protocols needs an Upgrade handshake and cannot be faked")
	}
	return nil
}
