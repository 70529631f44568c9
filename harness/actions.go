package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"cellbench/config"
	"cellbench/harness/report"
	"cellbench/harness/scenario"
)

var actionClient = &http.Client{Timeout: 5 * time.Second}

// runTimeline performs the scenario's actions at their offsets from origin
// and reports when each really happened.
func runTimeline(ctx context.Context, sc *scenario.Scenario, s *runSetup, origin time.Time, scale float64) []report.Action {
	var out []report.Action
	for _, a := range sc.Timeline {
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Until(origin.Add(a.At(scale)))):
		}
		res := report.Action{AtMs: msOf(time.Since(origin)), Kind: a.Kind, Detail: describeAction(a),
			Version: a.Version, Invalid: a.Invalid}
		if err := s.perform(ctx, a); err != nil {
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	return out
}

func (s *runSetup) perform(ctx context.Context, a scenario.Action) error {
	switch a.Kind {
	case scenario.ActionChaos:
		return call(http.MethodPost, "http://"+s.ready.Admin+"/cells/"+a.Cell+"/chaos", a.Chaos, http.StatusOK)
	case scenario.ActionChaosReset:
		return call(http.MethodDelete, "http://"+s.ready.Admin+"/cells/"+a.Cell+"/chaos", nil, http.StatusOK)
	case scenario.ActionConfigWrite:
		doc, err := s.document(a)
		if err != nil {
			return err
		}
		if s.remote != nil {
			// The file is on the router's host: the same document goes
			// through the control plane the router follows.
			return call(http.MethodPut, "http://"+s.cpAddr+"/config", doc, http.StatusAccepted)
		}
		return writeAtomic(s.cfgPath, doc)
	case scenario.ActionCPPut:
		doc, err := s.document(a)
		if err != nil {
			return err
		}
		return call(http.MethodPut, "http://"+s.cpAddr+"/config", doc, http.StatusAccepted)
	case scenario.ActionCPKill:
		if s.cp == nil || s.cp.Exited() {
			return fmt.Errorf("control plane is not running")
		}
		return s.cp.Kill()
	case scenario.ActionCPStart:
		if s.cp != nil && !s.cp.Exited() {
			return fmt.Errorf("control plane is already running")
		}
		return s.startControlPlane(ctx, s.env)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// document is the run's config with the action's version; an invalid one
// names a default placement that does not exist (default_placement_unknown),
// which both routers and the control plane must refuse.
func (s *runSetup) document(a scenario.Action) ([]byte, error) {
	cfg := *s.cfg
	cfg.Version = a.Version
	if a.Invalid {
		cfg.DefaultPlacement = "no-such-placement"
	}
	doc, err := config.Marshal(&cfg)
	if err != nil {
		return nil, err
	}
	if !a.Invalid {
		if _, err := config.Parse(doc); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func call(method, url string, body []byte, want int) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := actionClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func describeAction(a scenario.Action) string {
	switch a.Kind {
	case scenario.ActionChaos:
		var compact bytes.Buffer
		if json.Compact(&compact, a.Chaos) != nil {
			return a.Cell + " " + string(a.Chaos)
		}
		return a.Cell + " " + compact.String()
	case scenario.ActionChaosReset:
		return a.Cell + " reset"
	case scenario.ActionConfigWrite, scenario.ActionCPPut:
		if a.Invalid {
			return "invalid document " + a.Version
		}
		return "version " + a.Version
	}
	return "control plane"
}
