package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// responseOutcome is what a proxy sees of one response on a connection:
// the head's fields, the body and how it ended, and the next bytes left
// on the connection (the start of whatever follows).
type responseOutcome struct {
	Status, Proto        string
	StatusCode           int
	ProtoMajor, Minor    int
	Header               http.Header
	ContentLength        int64
	Close                bool
	TransferEncoding     []string
	Trailer              http.Header
	Body                 string
	BodyErr              string
	Rest                 string
	ErrBeforeBody        string
	NoBody, BodyIsNoBody bool
}

func outcome(resp *http.Response, err error, br *bufio.Reader) responseOutcome {
	if err != nil {
		return responseOutcome{ErrBeforeBody: err.Error()}
	}
	o := responseOutcome{Status: resp.Status, Proto: resp.Proto, StatusCode: resp.StatusCode,
		ProtoMajor: resp.ProtoMajor, Minor: resp.ProtoMinor, Header: resp.Header,
		ContentLength: resp.ContentLength, Close: resp.Close, TransferEncoding: resp.TransferEncoding,
		Trailer: resp.Trailer, BodyIsNoBody: resp.Body == http.NoBody}
	body, berr := io.ReadAll(resp.Body)
	o.Body = string(body)
	if berr != nil {
		o.BodyErr = berr.Error()
	}
	rest, _ := io.ReadAll(br)
	o.Rest = string(rest)
	return o
}

// compareWithReadResponse reads wire with readPlainResponse and, on a
// separate reader, with http.ReadResponse. Where readPlainResponse takes
// the response, both must see the same; where it does not, it must leave
// the reader untouched, so that http.ReadResponse still reads it all.
func compareWithReadResponse(t *testing.T, wire []byte, method string) (taken bool) {
	t.Helper()
	req := &http.Request{Method: method}
	plainReader := bufio.NewReaderSize(bytes.NewReader(wire), 4096)
	var got responseOutcome
	if resp := readPlainResponse(plainReader, req); resp != nil {
		taken = true
		got = outcome(resp, nil, plainReader)
	} else {
		resp, err := http.ReadResponse(plainReader, req)
		got = outcome(resp, err, plainReader)
	}
	netReader := bufio.NewReaderSize(bytes.NewReader(wire), 4096)
	resp, err := http.ReadResponse(netReader, req)
	want := outcome(resp, err, netReader)
	if taken && want.ErrBeforeBody != "" {
		t.Fatalf("readPlainResponse takes %q, http.ReadResponse refuses it: %s", wire, want.ErrBeforeBody)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q (taken %v):\n got  %+v\n want %+v", wire, taken, got, want)
	}
	return taken
}

var plainResponseCases = []struct {
	name   string
	wire   string
	method string
	taken  bool
}{
	{"cell echo", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\nDate: Thu, 26 Nov 2026 05:00:00 GMT\r\nX-Cell: tier1\r\n\r\n{\"ok\": true}\n", "GET", true},
	{"keep-alive with the next response behind", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n", "GET", true},
	{"lower-case names, repeated field", "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", "POST", true},
	{"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx", "GET", true},
	{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", "GET", true},
	{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET", true},
	{"leading zeros in the length", "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567", "GET", true},

	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "GET", false},
	{"no length (read to close)", "HTTP/1.1 200 OK\r\n\r\nuntil close", "GET", false},
	{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "GET", false},
	{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", "GET", false},
	{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", "GET", false},
	{"empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "GET", false},
	{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", false},
	{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", false},
	{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", false},
	{"Trailer", "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\nx", "GET", false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", false},
	{"control character", "HTTP/1.1 200 OK\r\nX-A: a\x01\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"bad status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
	{"cut head", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "GET", false},
	{"empty", "", "GET", false},
}

func TestReadPlainResponseMatchesReadResponse(t *testing.T) {
	for _, tc := range plainResponseCases {
		t.Run(tc.name, func(t *testing.T) {
			if taken := compareWithReadResponse(t, []byte(tc.wire), tc.method); taken != tc.taken {
				t.Errorf("taken by readPlainResponse: %v, want %v", taken, tc.taken)
			}
		})
	}
}

func FuzzReadPlainResponse(f *testing.F) {
	for _, tc := range plainResponseCases {
		f.Add([]byte(tc.wire), tc.method == "HEAD")
	}
	f.Fuzz(func(t *testing.T, wire []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		compareWithReadResponse(t, wire, method)
	})
}

// TestLengthBodyEndsWithData checks the body hands back its last bytes
// with io.EOF, so that the pool gets the connection back on that read.
func TestLengthBodyEndsWithData(t *testing.T) {
	b := &lengthBody{r: bytes.NewReader([]byte("abcdef")), remaining: 3}
	p := make([]byte, 10)
	n, err := b.Read(p)
	if n != 3 || !errors.Is(err, io.EOF) || string(p[:n]) != "abc" {
		t.Fatalf("Read = %d %q %v, want 3 \"abc\" EOF", n, p[:n], err)
	}
}

// BenchmarkReadPlainResponse and BenchmarkReadResponse read the same
// response, a cell's echo, the way the pooled client and net/http do.
func BenchmarkReadPlainResponse(b *testing.B) {
	benchmarkResponse(b, func(br *bufio.Reader, req *http.Request) *http.Response {
		return readPlainResponse(br, req)
	})
}

func BenchmarkReadResponse(b *testing.B) {
	benchmarkResponse(b, func(br *bufio.Reader, req *http.Request) *http.Response {
		resp, _ := http.ReadResponse(br, req)
		return resp
	})
}

func benchmarkResponse(b *testing.B, read func(*bufio.Reader, *http.Request) *http.Response) {
	wire := []byte(plainResponseCases[0].wire)
	req := &http.Request{Method: http.MethodGet}
	r := bytes.NewReader(wire)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(wire)
		br.Reset(r)
		resp := read(br, req)
		if resp == nil {
			b.Fatal("not read")
		}
		_, _ = io.Copy(io.Discard, resp.Body)
	}
}

// TestBareLFResponseIsNotWaitedOn: an upstream that ends its head with a
// bare LF and keeps the connection open must not be waited on until the
// header timeout; readPlainResponse hands it to http.ReadResponse, which
// reads it.
func TestBareLFResponseIsNotWaitedOn(t *testing.T) {
	upstream, router := net.Pipe()
	defer upstream.Close()
	defer router.Close()
	go io.WriteString(upstream, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
	_ = router.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(router)
	req := &http.Request{Method: http.MethodGet}
	if resp := readPlainResponse(br, req); resp != nil {
		t.Fatalf("readPlainResponse took a bare-LF head")
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("http.ReadResponse after readPlainResponse: %v", err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("read %d %q", resp.StatusCode, body)
	}
}
