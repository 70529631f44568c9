package cell

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The benchmarks drive a real cell over loopback with keep-alive
// connections and a minimal raw HTTP/1.1 client, so nearly all the measured
// work is the cell's. They run with GOMAXPROCS(1): client and cell share one
// core, so req/s is a lower bound on what the cell alone sustains on a core.
// allocs/op is per request; the raw client itself allocates nothing.
//
//	go test -run '^$' -bench . -benchmem ./mockbackends/cell/

// routerHeaders is what a request looks like after a cellbench router.
const routerHeaders = "Host: acme.example\r\n" +
	"User-Agent: vegeta\r\n" +
	"X-Routing-Key: acme\r\n" +
	"X-Request-Id: 0b7c2f9e-4a8d-4f2b-9d61-3e1f0a5c7b21\r\n" +
	"X-Forwarded-For: 127.0.0.1\r\n" +
	"X-Forwarded-Proto: http\r\n" +
	"X-Forwarded-Host: acme.example\r\n" +
	"Via: 1.1 cellbench\r\n"

func BenchmarkCellGetEcho(b *testing.B) {
	benchRequests(b, 1, "GET /api/v1/items?id=42 HTTP/1.1\r\n"+routerHeaders+"\r\n")
}

func BenchmarkCellPostEcho1KiB(b *testing.B) {
	body := bytes.Repeat([]byte("b"), 1024)
	benchRequests(b, 1, "POST /api/v1/items HTTP/1.1\r\n"+routerHeaders+"Content-Length: 1024\r\n\r\n"+string(body))
}

func BenchmarkCellGetSize4KiB(b *testing.B) {
	benchRequests(b, 1, "GET /blob?size=4096 HTTP/1.1\r\n"+routerHeaders+"\r\n")
}

func BenchmarkCellHealth(b *testing.B) {
	benchRequests(b, 1, "GET /health HTTP/1.1\r\nHost: cell\r\nUser-Agent: probe\r\n\r\n")
}

// 64 keep-alive connections at once, as a router's pool under load.
func BenchmarkCellGetEcho64Conns(b *testing.B) {
	benchRequests(b, 64, "GET /api/v1/items?id=42 HTTP/1.1\r\n"+routerHeaders+"\r\n")
}

func benchRequests(b *testing.B, conns int, request string) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c, err := New("bench", "127.0.0.1:0", Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	}()
	clients := make([]*rawClient, conns)
	for i := range clients {
		if clients[i], err = dialRaw(c.Addr(), request); err != nil {
			b.Fatal(err)
		}
		defer clients[i].conn.Close()
		if err := clients[i].roundTrip(); err != nil { // warm the connection
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpuBefore := processCPU(b)
	b.ResetTimer()
	if conns == 1 {
		for b.Loop() {
			if err := clients[0].roundTrip(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		next := make(chan *rawClient, conns)
		for _, rc := range clients {
			next <- rc
		}
		b.SetParallelism(conns) // with GOMAXPROCS(1): conns goroutines
		b.RunParallel(func(pb *testing.PB) {
			rc := <-next
			for pb.Next() {
				if err := rc.roundTrip(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(b.N)/(processCPU(b)-cpuBefore).Seconds(), "req/cpu-s")
}

// processCPU is the user plus system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawClient sends one fixed request per round trip on a keep-alive
// connection and skips the response by its Content-Length.
type rawClient struct {
	conn    net.Conn
	r       *bufio.Reader
	request []byte
}

func dialRaw(addr, request string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), request: []byte(request)}, nil
}

var contentLengthPrefix = []byte("Content-Length: ")

func (rc *rawClient) roundTrip() error {
	if _, err := rc.conn.Write(rc.request); err != nil {
		return err
	}
	status, err := rc.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return &unexpectedStatus{line: string(status)}
	}
	length := -1
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, contentLengthPrefix); ok {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err = rc.r.Discard(length)
	return err
}

type unexpectedStatus struct{ line string }

func (e *unexpectedStatus) Error() string { return "unexpected status line " + strconv.Quote(e.line) }
