package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"cellbench/config"
)

// putBodyTimeout bounds how long a client may take to upload a document.
const putBodyTimeout = 30 * time.Second

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connect", s.requireToken(s.handleConnect))
	mux.HandleFunc("PUT /config", s.requireToken(s.handlePutConfig))
	mux.HandleFunc("GET /config", s.handleGetConfig)
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// requireToken enforces "Authorization: Bearer <token>" when the control
// plane was started with a token. Both sides are hashed before the
// constant-time compare so that neither the content nor the length of the
// token leaks through timing.
func (s *server) requireToken(next http.HandlerFunc) http.HandlerFunc {
	if s.token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.token))
	return func(w http.ResponseWriter, r *http.Request) {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(presented))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.log.Warn("unauthorized", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="cellbench-controlplane"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		next(w, r)
	}
}

func (s *server) handlePutConfig(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(putBodyTimeout))
	var (
		doc     *document
		changed bool
	)
	raw, err := readDocument(w, r)
	if err == nil {
		doc, changed, err = s.put(raw)
	}
	var rejection *config.Error
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"version": doc.version, "changed": changed})
	case errors.As(err, &rejection):
		s.log.Warn("config_rejected", "source", sourceAPI, "remote", r.RemoteAddr, "code", rejection.Code, "error", err.Error())
		writeError(w, http.StatusBadRequest, rejection.Code, rejection.Message)
	default: // the document was valid but could not be written to the config file
		s.log.Error("config_rejected", "source", sourceAPI, "remote", r.RemoteAddr, "code", codePersistFailed, "error", err.Error())
		writeError(w, http.StatusInternalServerError, codePersistFailed, err.Error())
	}
}

// codePersistFailed answers a valid PUT that could not be saved; nothing
// is broadcast then, so the fleet never runs a document a restart would lose.
const codePersistFailed = "persist_failed"

// readDocument reads a PUT body of at most config.MaxDocumentBytes. A
// longer body is rejected with the code config.Parse gives an oversize
// document, without reading the rest.
func readDocument(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, config.MaxDocumentBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &config.Error{Code: config.CodeParseError, Message: "document is larger than the 16 MiB allowed"}
	case err != nil:
		return nil, &config.Error{Code: config.CodeParseError, Message: "reading the body: " + err.Error()}
	}
	return raw, nil
}

func (s *server) handleGetConfig(w http.ResponseWriter, _ *http.Request) {
	doc := s.hub.document()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Config-Version", doc.version)
	_, _ = w.Write(doc.raw)
}

func (s *server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.hub.status())
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}
