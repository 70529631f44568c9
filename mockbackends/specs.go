package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"cellbench/config"
)

// cellSpec is one cell to start, from a placement or a --cell flag.
type cellSpec struct {
	name, addr, healthPath, source string
}

// cellFlags collects repeated --cell NAME=ADDR flags.
type cellFlags []cellSpec

func (f *cellFlags) String() string { return "" }

func (f *cellFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" || addr == "" {
		return fmt.Errorf("want NAME=HOST:PORT, got %q", v)
	}
	*f = append(*f, cellSpec{name: name, addr: addr, source: "--cell " + v})
	return nil
}

// collectSpecs turns the config's placements and the --cell flags into the
// cells to start, refusing duplicate names and two cells on one address.
func collectSpecs(configPath string, extra []cellSpec) ([]cellSpec, error) {
	var specs []cellSpec
	if configPath != "" {
		doc, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("--config: %v", err)
		}
		cfg, err := config.Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("--config %s: %v", configPath, err)
		}
		for _, name := range slices.Sorted(maps.Keys(cfg.Placements)) {
			p := cfg.Placements[name]
			u, err := url.Parse(p.Endpoint)
			if err != nil {
				// config.Parse has validated the endpoint already.
				return nil, fmt.Errorf("--config %s: placement %s: %v", configPath, name, err)
			}
			s := cellSpec{name: name, addr: u.Host, source: "placement " + name}
			if p.HealthCheck != nil {
				s.healthPath = p.HealthCheck.Path
			}
			specs = append(specs, s)
		}
	}
	specs = append(specs, extra...)
	if len(specs) == 0 {
		return nil, errors.New("no cells: give --config PATH and/or --cell NAME=HOST:PORT")
	}
	byName := make(map[string]string)
	byAddr := make(map[string]string)
	for _, s := range specs {
		if prev, dup := byName[s.name]; dup {
			return nil, fmt.Errorf("cell name %q is given twice (%s and %s)", s.name, prev, s.source)
		}
		byName[s.name] = s.source
		host, port, err := net.SplitHostPort(s.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: address %q must be host:port", s.source, s.addr)
		}
		if port == "0" {
			continue // every port 0 binds a different free port
		}
		key := net.JoinHostPort(strings.ToLower(host), port)
		if prev, dup := byAddr[key]; dup {
			return nil, fmt.Errorf("%s and %s both listen on %s; each cell needs its own address", prev, s.source, key)
		}
		byAddr[key] = s.source
	}
	return specs, nil
}
