// Package browser drives headless Chromium over the DevTools protocol
// (a WebSocket to one page): load a page, collect what it logged as an
// error and every resource it fetched, evaluate an expression in it, and
// take a full-page screenshot. The harness uses it to check report.html
// the way a reader's browser shows it, and to keep report.png beside it.
package browser

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Binaries are the names Chromium is installed under (Debian: chromium).
var Binaries = []string{"chromium", "chromium-browser", "google-chrome"}

// Find returns the path of an installed Chromium, or an error naming the
// Debian package.
func Find() (string, error) {
	for _, b := range Binaries {
		if p, err := exec.LookPath(b); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found (Debian: apt-get install chromium)")
}

// Session is one headless Chromium with one page.
type Session struct {
	cmd     *exec.Cmd
	profile string
	conn    *websocket.Conn

	mu       sync.Mutex
	nextID   int
	waiting  map[int]chan reply
	events   map[string]chan json.RawMessage
	problems []string
	fetched  []string
	readErr  error
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// devtoolsLine is Chromium's announcement of its DevTools endpoint on stderr.
var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// Start launches Chromium headless with a fresh profile and attaches to its
// page. width is the viewport width in CSS pixels.
func Start(ctx context.Context, bin string, width int) (*Session, error) {
	profile, err := os.MkdirTemp("", "cellbench-chromium-")
	if err != nil {
		return nil, err
	}
	s := &Session{profile: profile, waiting: map[int]chan reply{}, events: map[string]chan json.RawMessage{}}
	// --no-sandbox: the harness runs as root (CI), where Chromium's
	// sandbox refuses to start.
	s.cmd = exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir="+profile, fmt.Sprintf("--window-size=%d,900", width), "about:blank")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(profile)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case endpoint <- m[1]:
				default:
				}
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-endpoint:
	case <-time.After(30 * time.Second):
		s.Close()
		return nil, errors.New("chromium did not announce its DevTools endpoint within 30 s")
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	pageURL, err := pageTarget(browserURL)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.conn, _, err = websocket.DefaultDialer.DialContext(ctx, pageURL, nil)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("devtools: %w", err)
	}
	go s.read()
	for _, domain := range []string{"Runtime.enable", "Log.enable", "Page.enable", "Network.enable"} {
		if err := s.call(ctx, domain, nil, nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// pageTarget finds the page's WebSocket from the browser's /json/list.
func pageTarget(browserURL string) (string, error) {
	host := strings.TrimPrefix(browserURL, "ws://")
	host, _, _ = strings.Cut(host, "/")
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	for try := 0; try < 50; try++ {
		resp, err := http.Get("http://" + host + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if err == nil {
			for _, t := range targets {
				if t.Type == "page" && t.WS != "" {
					return t.WS, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("devtools: chromium shows no page target")
}

// read dispatches replies to their calls and keeps what the page logged.
func (s *Session) read() {
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			reply
		}
		if err := s.conn.ReadJSON(&msg); err != nil {
			s.mu.Lock()
			s.readErr = err
			for id, ch := range s.waiting {
				close(ch)
				delete(s.waiting, id)
			}
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		if msg.ID != 0 {
			if ch, ok := s.waiting[msg.ID]; ok {
				ch <- msg.reply
				delete(s.waiting, msg.ID)
			}
		} else {
			s.event(msg.Method, msg.Params)
		}
		s.mu.Unlock()
	}
}

// event records errors and fetches; s.mu is held.
func (s *Session) event(method string, params json.RawMessage) {
	switch method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
			var parts []string
			for _, a := range p.Args {
				parts = append(parts, fmt.Sprint(a.Value)+a.Description)
			}
			s.problems = append(s.problems, "console."+p.Type+": "+strings.Join(parts, " "))
		}
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(params, &p)
		s.problems = append(s.problems, "exception: "+p.Details.Text+" "+p.Details.Exception.Description)
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		if json.Unmarshal(params, &p) == nil && p.Entry.Level == "error" {
			s.problems = append(s.problems, "log: "+p.Entry.Text+" "+p.Entry.URL)
		}
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(params, &p) == nil {
			s.fetched = append(s.fetched, p.Request.URL)
		}
	}
	if ch, ok := s.events[method]; ok {
		select {
		case ch <- params:
		default:
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (s *Session) call(ctx context.Context, method string, params, out any) error {
	s.mu.Lock()
	if s.readErr != nil {
		s.mu.Unlock()
		return fmt.Errorf("devtools: %w", s.readErr)
	}
	s.nextID++
	id := s.nextID
	ch := make(chan reply, 1)
	s.waiting[id] = ch
	err := s.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("devtools %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("devtools %s: connection closed", method)
		}
		if r.Error != nil {
			return fmt.Errorf("devtools %s: %s", method, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("devtools %s: %w", method, ctx.Err())
	}
}

// Navigate loads url and waits for its load event.
func (s *Session) Navigate(ctx context.Context, url string) error {
	loaded := make(chan json.RawMessage, 1)
	s.mu.Lock()
	s.events["Page.loadEventFired"] = loaded
	s.mu.Unlock()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := s.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("navigate %s: %s", url, nav.ErrorText)
	}
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("navigate %s: no load event: %w", url, ctx.Err())
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its
// JSON-serialisable value into out.
func (s *Session) Eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := s.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("evaluate: %s", res.Exception.Text)
	}
	return json.Unmarshal(res.Result.Value, out)
}

// Screenshot writes a PNG of the whole page (not only the viewport) to
// path, at most maxHeight CSS pixels tall.
func (s *Session) Screenshot(ctx context.Context, path string, maxHeight int) error {
	var m struct {
		Content struct {
			Width, Height float64
		} `json:"cssContentSize"`
	}
	if err := s.call(ctx, "Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	h := math.Min(math.Ceil(m.Content.Height), float64(maxHeight))
	var shot struct {
		Data string `json:"data"`
	}
	if err := s.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": math.Ceil(m.Content.Width), "height": h, "scale": 1}}, &shot); err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// Problems are the errors the page logged so far: console.error and
// failed assertions, uncaught exceptions, and the browser's own error log
// (a resource that failed to load, a blocked request).
func (s *Session) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// Fetched are the URLs the page requested, itself included.
func (s *Session) Fetched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fetched...)
}

// Close stops Chromium and removes its profile.
func (s *Session) Close() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		s.cmd.Wait()
	}
	os.RemoveAll(s.profile)
}
