package upstream

import (
	"net"
	"net/http"
	"time"
)

// stdlibClient is the stdlib engine's upstream client: every attempt goes
// through http.Transport over plain net.Dialer connections.
type stdlibClient struct {
	transport *http.Transport
}

func newStdlibClient(connect, header time.Duration) *stdlibClient {
	dialer := &net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}
	return &stdlibClient{transport: newTransport(dialer.DialContext, header)}
}

func (c *stdlibClient) roundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	return transportRoundTrip(c.transport, req, w)
}

func (c *stdlibClient) retire() { c.transport.CloseIdleConnections() }
