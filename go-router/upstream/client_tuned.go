package upstream

import (
	"net"
	"net/http"
	"time"

	"cellbench/go-router/rawconn"
)

// tunedClient is the tuned engine's upstream client: bodiless requests go
// over go-router's own pool (connpool.go), the rest through http.Transport,
// whose concurrent body writer copes with an upstream that answers before
// it has read the body. Both dial rawconn sockets.
type tunedClient struct {
	pool      *connPool
	transport *http.Transport
}

func newTunedClient(host string, connect, header time.Duration) *tunedClient {
	dialer := &rawconn.Dialer{Dialer: net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}}
	return &tunedClient{
		pool:      newConnPool(host, connect, header),
		transport: newTransport(dialer.DialContext, header),
	}
}

func (c *tunedClient) roundTrip(req *http.Request, w http.ResponseWriter) (*http.Response, error) {
	if req.Body == nil && req.Header["Expect"] == nil {
		return c.pool.roundTrip(req, w)
	}
	return transportRoundTrip(c.transport, req, w)
}

func (c *tunedClient) retire() {
	c.pool.retire()
	c.transport.CloseIdleConnections()
}
