package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"cellbench/harness/metrics"
)

// attackFormat names the raw result file of `harness attack`, version 1:
// JSON Lines, one attackHeader, then attackHeader.Records lines of one
// attackRecord each, in schedule order (harness/README.md documents it).
const attackFormat = "cellbench-attack/1"

// attackHeader is the first line of an attack file.
type attackHeader struct {
	Format string `json:"format"`
	// Scenario is the scenario as the attacker ran it (after its duration
	// scale), so that merge needs no scenario files and can check that
	// every share ran the same one.
	Scenario      json.RawMessage `json:"scenario"`
	DurationScale float64         `json:"duration_scale"`
	// TargetName is the report's name for the target, TargetURL where the
	// load went.
	TargetName string `json:"target_name"`
	TargetURL  string `json:"target_url"`
	// Share is this attacker's index and the number of attackers; Rate
	// the whole schedule's rate (this share sends Rate/Of of it),
	// DurationMs its length, Conns this attacker's connections.
	Share      shareSpec `json:"share"`
	Rate       int       `json:"rate"`
	DurationMs float64   `json:"duration_ms"`
	Conns      int       `json:"conns"`
	// Start is the schedule's start: on the barrier's clock when
	// StartSource is "barrier", else as given on the command line.
	Start       time.Time `json:"start"`
	StartSource string    `json:"start_source"`
	// ClockOffsetMs is the barrier's clock minus this host's, measured
	// over the round trip with the smallest delay (ClockUncertaintyMs is
	// half of it); null without a barrier.
	ClockOffsetMs      *float64 `json:"clock_offset_ms"`
	ClockUncertaintyMs float64  `json:"clock_uncertainty_ms"`
	Host               string   `json:"host"`
	// Expected maps each routing key to the placement the scenario's
	// config routes it to; BootstrapVersion is that config's version.
	Expected         map[string]string `json:"expected_placement"`
	BootstrapVersion string            `json:"bootstrap_version"`
	// Generator is this attacker's CPU over its share; Router the
	// router's process metrics before and after, read by share 0 when
	// given --router-admin.
	GeneratorCPUSeconds float64       `json:"generator_cpu_seconds"`
	Router              *routerWindow `json:"router,omitempty"`
	// Records is the number of result lines that follow.
	Records int `json:"records"`
}

// shareSpec is attacker Index of Of.
type shareSpec struct {
	Index int `json:"index"`
	Of    int `json:"of"`
}

// routerWindow is the router's CPU and memory from its /metrics around
// the schedule.
type routerWindow struct {
	CPUSecondsBefore float64 `json:"cpu_seconds_before"`
	CPUSecondsAfter  float64 `json:"cpu_seconds_after"`
	RSSBytesAfter    int64   `json:"rss_bytes_after"`
	WallMs           float64 `json:"wall_ms"`
}

// attackRecord is one request (metrics.Record): times in nanoseconds, the
// start from the schedule's start.
type attackRecord struct {
	StartNs    int64  `json:"start_ns"`
	LatencyNs  int64  `json:"latency_ns"`
	LagNs      int64  `json:"lag_ns,omitempty"`
	NoFreeConn bool   `json:"no_free_conn,omitempty"`
	Code       uint16 `json:"code"`
	Error      string `json:"error,omitempty"`
	Target     int    `json:"target"`
	Served     string `json:"served,omitempty"`
	Failover   string `json:"failover,omitempty"`
	Version    string `json:"version,omitempty"`
}

func toAttackRecord(r metrics.Record) attackRecord {
	return attackRecord{StartNs: int64(r.Start), LatencyNs: int64(r.Latency), LagNs: int64(r.Lag), NoFreeConn: r.NoFreeConn,
		Code: r.Code, Error: r.Error, Target: r.Target, Served: r.Served, Failover: r.Failover, Version: r.Version}
}

func (a attackRecord) record() metrics.Record {
	return metrics.Record{Start: time.Duration(a.StartNs), Latency: time.Duration(a.LatencyNs), Lag: time.Duration(a.LagNs),
		NoFreeConn: a.NoFreeConn, Code: a.Code, Error: a.Error, Target: a.Target, Served: a.Served, Failover: a.Failover, Version: a.Version}
}

// writeAttackFile writes the header and the records to path, through a
// temporary file, so that a file under that name is always complete.
func writeAttackFile(path string, h attackHeader, recs []metrics.Record) error {
	h.Format, h.Records = attackFormat, len(recs)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(bw)
	err = enc.Encode(h)
	for _, r := range recs {
		if err != nil {
			break
		}
		err = enc.Encode(toAttackRecord(r))
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// readAttackFile reads an attack file strictly: the format, then exactly
// the header's number of records.
func readAttackFile(path string) (attackHeader, []metrics.Record, error) {
	var h attackHeader
	f, err := os.Open(path)
	if err != nil {
		return h, nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if h.Format != attackFormat {
		return h, nil, fmt.Errorf("%s: format %q, want %q", path, h.Format, attackFormat)
	}
	if h.Records < 0 || h.Records > 1<<28 {
		return h, nil, fmt.Errorf("%s: %d records", path, h.Records)
	}
	recs := make([]metrics.Record, 0, min(h.Records, 1<<22))
	for range h.Records {
		var a attackRecord
		if err := dec.Decode(&a); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("the file ends after %d of %d records", len(recs), h.Records)
			}
			return h, nil, fmt.Errorf("%s: record %d: %w", path, len(recs)+1, err)
		}
		recs = append(recs, a.record())
	}
	if dec.More() {
		return h, nil, fmt.Errorf("%s: data after its %d records", path, h.Records)
	}
	return h, recs, nil
}
