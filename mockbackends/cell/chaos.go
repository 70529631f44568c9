package cell

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Health values of the chaos "health" field.
const (
	HealthOK   = "ok"
	HealthFail = "fail"
)

// Chaos is the fault a cell injects into every non-health request, plus the
// answer its health endpoint gives. The zero value with Health "ok" is a
// normal cell. A Chaos is immutable once published: the hot path reads it
// through an atomic pointer, and changes publish a new value.
type Chaos struct {
	Health    string  `json:"health"`
	Status    int     `json:"status"`     // 0: answer normally
	ErrorRate float64 `json:"error_rate"` // fraction answered with 500
	DelayMs   int64   `json:"delay_ms"`   // added before the response head
}

// NormalChaos is a cell without faults.
var NormalChaos = Chaos{Health: HealthOK}

// ChaosPatch is one POST /cells/NAME/chaos body: nil fields keep their value.
type ChaosPatch struct {
	Health    *string
	Status    *int
	ErrorRate *float64
	DelayMs   *int64
	Down      *bool
}

// Apply returns c with the patch's fields set (Down is cell state, not Chaos).
func (p ChaosPatch) Apply(c Chaos) Chaos {
	if p.Health != nil {
		c.Health = *p.Health
	}
	if p.Status != nil {
		c.Status = *p.Status
	}
	if p.ErrorRate != nil {
		c.ErrorRate = *p.ErrorRate
	}
	if p.DelayMs != nil {
		c.DelayMs = *p.DelayMs
	}
	return c
}

// MaxChaosBodyBytes bounds a chaos request body.
const MaxChaosBodyBytes = 64 << 10

// ParseChaosPatch decodes and validates a chaos body strictly: a JSON object
// with only known fields, each of the right type (null is a wrong type, not
// "unset") and in range. Either the whole patch is valid or none of it is.
func ParseChaosPatch(body []byte) (ChaosPatch, error) {
	var p ChaosPatch
	fields, err := decodeObject(body)
	if err != nil {
		return p, err
	}
	// Sorted so that a body with several faults always reports the same one.
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return p, fmt.Errorf("%s: null is not a value; leave the field out to keep it", name)
		}
		switch name {
		case "health":
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return p, fmt.Errorf("health: must be a string")
			}
			if v != HealthOK && v != HealthFail {
				return p, fmt.Errorf("health: %q must be %q or %q", v, HealthOK, HealthFail)
			}
			p.Health = &v
		case "status":
			var v int
			if err := json.Unmarshal(raw, &v); err != nil {
				return p, fmt.Errorf("status: must be an integer")
			}
			// 0 clears an injected status.
			if v != 0 {
				if err := checkStatus(v); err != nil {
					return p, fmt.Errorf("status: %v (or 0 to clear)", err)
				}
			}
			p.Status = &v
		case "error_rate":
			var v float64
			if err := json.Unmarshal(raw, &v); err != nil {
				return p, fmt.Errorf("error_rate: must be a number")
			}
			if v < 0 || v > 1 {
				return p, fmt.Errorf("error_rate: %v must be from 0 to 1", v)
			}
			p.ErrorRate = &v
		case "delay_ms":
			var v int64
			if err := json.Unmarshal(raw, &v); err != nil {
				return p, fmt.Errorf("delay_ms: must be an integer")
			}
			if v < 0 || v > MaxDelayMs {
				return p, fmt.Errorf("delay_ms: %d must be from 0 to %d", v, MaxDelayMs)
			}
			p.DelayMs = &v
		case "down":
			var v bool
			if err := json.Unmarshal(raw, &v); err != nil {
				return p, fmt.Errorf("down: must be true or false")
			}
			p.Down = &v
		default:
			return p, fmt.Errorf("unknown field %q (known: health, status, error_rate, delay_ms, down)", name)
		}
	}
	return p, nil
}

// decodeObject splits a JSON object into its members, rejecting duplicate
// keys (encoding/json would keep the last silently) and trailing data.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("body must be a JSON object")
	}
	fields := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %v", err)
		}
		name := tok.(string) // inside an object the decoder only yields string keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %v", err)
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("field %q given twice", name)
		}
		fields[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("body has data after the JSON object")
	}
	return fields, nil
}
