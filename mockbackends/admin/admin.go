// Package admin is the chaos API of a set of mock cells: read their state
// and counters, inject faults, reset them.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"cellbench/mockbackends/cell"
)

// Error codes of the admin API.
const (
	CodeUnknownCell  = "unknown_cell"
	CodeBadChaos     = "bad_chaos"
	CodeListenFailed = "listen_failed"
)

// CellsResponse is the body of GET /cells.
type CellsResponse struct {
	Cells map[string]cell.State `json:"cells"`
}

// Handler serves:
//
//	GET    /healthz               {"status":"ok"}
//	GET    /cells                 every cell's state and counters
//	GET    /cells/{name}          one cell's state and counters
//	POST   /cells/{name}/chaos    apply a chaos patch, answer the new state
//	DELETE /cells/{name}/chaos    reset to normal (and up), answer the new state
func Handler(cells []*cell.Cell) http.Handler {
	byName := make(map[string]*cell.Cell, len(cells))
	for _, c := range cells {
		byName[c.Name()] = c
	}
	a := &api{cells: byName}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /cells", a.listCells)
	mux.HandleFunc("GET /cells/{name}", a.withCell(a.getCell))
	mux.HandleFunc("POST /cells/{name}/chaos", a.withCell(a.postChaos))
	mux.HandleFunc("DELETE /cells/{name}/chaos", a.withCell(a.deleteChaos))
	return mux
}

type api struct {
	cells map[string]*cell.Cell // fixed after start: read without a lock
}

func (a *api) listCells(w http.ResponseWriter, r *http.Request) {
	resp := CellsResponse{Cells: make(map[string]cell.State, len(a.cells))}
	for name, c := range a.cells {
		resp.Cells[name] = c.State()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *api) withCell(h func(http.ResponseWriter, *http.Request, *cell.Cell)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		c, ok := a.cells[name]
		if !ok {
			writeError(w, http.StatusNotFound, CodeUnknownCell, fmt.Sprintf("no cell named %q", name))
			return
		}
		h(w, r, c)
	}
}

func (a *api) getCell(w http.ResponseWriter, r *http.Request, c *cell.Cell) {
	writeJSON(w, http.StatusOK, c.State())
}

func (a *api) postChaos(w http.ResponseWriter, r *http.Request, c *cell.Cell) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cell.MaxChaosBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeBadChaos, fmt.Sprintf("body is larger than %d bytes", cell.MaxChaosBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, CodeBadChaos, "reading body: "+err.Error())
		return
	}
	patch, err := cell.ParseChaosPatch(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadChaos, err.Error())
		return
	}
	a.apply(w, c, func() (cell.State, error) { return c.ApplyChaos(patch) })
}

func (a *api) deleteChaos(w http.ResponseWriter, r *http.Request, c *cell.Cell) {
	a.apply(w, c, c.ResetChaos)
}

func (a *api) apply(w http.ResponseWriter, c *cell.Cell, change func() (cell.State, error)) {
	state, err := change()
	if err != nil {
		// Only listening again can fail: the address was taken meanwhile.
		writeError(w, http.StatusInternalServerError, CodeListenFailed, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, state)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value written here is a plain struct or map of them.
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}
