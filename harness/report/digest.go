package report

import (
	"encoding/json"
	"io"
)

// Digest is what `--json` prints on stdout: the verdicts and headline
// figures of every scenario, for a CI pipeline that wants the answer
// without reading results.json's every round. Its fields are results.json's
// (docs/results.schema.json), under the same schema version.
type Digest struct {
	SchemaVersion int    `json:"schema_version"`
	Dir           string `json:"report_dir"`
	Quick         bool   `json:"quick,omitempty"`
	// Invalid counts runs left out of the figures (the generator fell
	// behind) and Errors runs that did not complete.
	Invalid   int              `json:"invalid_runs"`
	Errors    int              `json:"failed_runs"`
	Scenarios []DigestScenario `json:"scenarios"`
	Parity    []ParityResult   `json:"parity,omitempty"`
}

// DigestScenario is one scenario's answer.
type DigestScenario struct {
	Name     string     `json:"name"`
	Verdicts []Verdict  `json:"verdicts"`
	Headline []Headline `json:"headline"`
}

// DigestOf summarizes the results of the report in dir.
func DigestOf(dir string, r *Results) Digest {
	d := Digest{SchemaVersion: SchemaVersion, Dir: dir, Quick: r.Quick, Parity: r.Parity, Scenarios: []DigestScenario{}}
	for _, s := range r.Scenarios {
		d.Scenarios = append(d.Scenarios, DigestScenario{Name: s.Name, Verdicts: s.Verdicts, Headline: s.Headline})
		for _, run := range s.Runs {
			if run.Invalid != "" {
				d.Invalid++
			}
			if run.Error != "" {
				d.Errors++
			}
		}
	}
	return d
}

// WriteJSONTo writes v as indented JSON.
func WriteJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
