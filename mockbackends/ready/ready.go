// Package ready is the mock cells' ready line: the one line mockbackends
// writes on stdout once every listener is bound (mockbackends/README.md),
// and the one parser every reader of it uses.
package ready

import (
	"encoding/json"
	"fmt"
	"io"
)

// msg marks the ready line.
const msg = "ready"

// Line says where the chaos API and each cell listen (host:port).
type Line struct {
	Msg   string            `json:"msg"`
	Admin string            `json:"admin"`
	Cells map[string]string `json:"cells"` // cell name → address
}

// New is the ready line of an admin listener and its cells.
func New(admin string, cells map[string]string) Line {
	return Line{Msg: msg, Admin: admin, Cells: cells}
}

// Write writes l as one JSON line.
func (l Line) Write(w io.Writer) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Parse reads a ready line; any other line is an error.
func Parse(line string) (Line, error) {
	var l Line
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.Msg != msg {
		return Line{}, fmt.Errorf("not the mock cells' ready line: %q", line)
	}
	return l, nil
}

// Is reports whether line is a ready line (proc.Spec.Ready).
func Is(line string) bool {
	_, err := Parse(line)
	return err == nil
}
