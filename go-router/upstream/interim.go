package upstream

import (
	"net/http"

	"cellbench/go-router/h1"
)

// forwardInterim passes a 1xx response on to the client (RFC 9110 §15.2: a
// proxy forwards informational responses it did not ask for). net/http
// sends it at once from the header map, which is then cleared for the
// final response; a Connection field the handler set for the final
// response is kept out of the 1xx and put back.
func forwardInterim(w http.ResponseWriter, status int, header http.Header) {
	h := w.Header()
	connection := h["Connection"]
	clear(h)
	h1.CopyEndToEnd(h, header)
	w.WriteHeader(status)
	clear(h)
	if connection != nil {
		h["Connection"] = connection
	}
}
