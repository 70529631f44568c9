package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cellbench/config"
)

// Load reads, decodes and validates one scenario file. root is the
// repository root, against which Config paths are resolved.
func Load(path, root string) (*Scenario, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want := strings.TrimSuffix(filepath.Base(path), ".json"); s.Name != want {
		return nil, fmt.Errorf("%s: name %q must match the file name %q", path, s.Name, want)
	}
	if _, err := s.RouterConfig(root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadDir loads every *.json file of dir, sorted by name.
func LoadDir(dir, root string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no scenario files (*.json) in %s", dir)
	}
	sort.Strings(paths)
	var out []*Scenario
	for _, p := range paths {
		s, err := Load(p, root)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Parse decodes and validates a scenario document (without the checks that
// need the file system).
func Parse(doc []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid scenario: trailing data after the document")
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	return &s, nil
}

// RouterConfig returns the scenario's router config document, parsed and
// validated with the routers' own rules.
func (s *Scenario) RouterConfig(root string) (*config.Config, error) {
	doc := []byte(s.ConfigInline)
	if s.Config != "" {
		var err error
		if doc, err = os.ReadFile(filepath.Join(root, s.Config)); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	cfg, err := config.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}
