package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"cellbench/harness/report/schemacheck"
)

// schemaFile is the documented schema of results.json.
const schemaFile = "../../docs/results.schema.json"

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/results.schema.json from the Go types")

// TestResultsSchema keeps docs/results.schema.json the schema of the Go
// types (regenerated from them with their doc comments as descriptions)
// and checks that it validates what WriteJSON writes and rejects what it
// must.
func TestResultsSchema(t *testing.T) {
	got := generateSchema(t)
	if *updateSchema {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, got) {
		t.Fatalf("%s is not the schema of the Go types: run go test ./harness/report -run TestResultsSchema -update-schema (and bump SchemaVersion if a field was removed, renamed or changed meaning)", schemaFile)
	}
	dir := t.TempDir()
	if err := WriteJSON(dir, syntheticResults()); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := schemacheck.Validate(schemaFile, doc); err != nil {
		t.Fatalf("synthetic results.json: %v", err)
	}
	for name, spoil := range map[string]func(map[string]any){
		"an unknown field":       func(m map[string]any) { m["surprise"] = 1 },
		"rounds as a string":     func(m map[string]any) { m["rounds"] = "three" },
		"another schema version": func(m map[string]any) { m["schema_version"] = 999 },
		"no cpu_budget":          func(m map[string]any) { delete(m, "cpu_budget") },
		"a run without a target": func(m map[string]any) {
			delete(m["scenarios"].([]any)[0].(map[string]any)["runs"].([]any)[0].(map[string]any), "target")
		},
	} {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		spoil(m)
		b, _ := json.Marshal(m)
		if err := schemacheck.Validate(schemaFile, b); err == nil {
			t.Errorf("results.json with %s validated", name)
		}
	}
}

// generateSchema is the JSON Schema (2020-12) of Results: one definition
// per Go struct, every field required unless omitempty, no other field
// allowed, descriptions from the fields' doc comments.
func generateSchema(t *testing.T) []byte {
	docs := fieldDocs(t, ".", "../metrics", "../scenario")
	defs := map[string]any{}
	var typeOf func(reflect.Type) map[string]any
	typeOf = func(rt reflect.Type) map[string]any {
		switch rt {
		case reflect.TypeOf(time.Time{}):
			return map[string]any{"type": "string", "format": "date-time"}
		}
		switch rt.Kind() {
		case reflect.Bool:
			return map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int64, reflect.Uint16:
			return map[string]any{"type": "integer"}
		case reflect.Float64:
			return map[string]any{"type": "number"}
		case reflect.String:
			return map[string]any{"type": "string"}
		case reflect.Pointer:
			return map[string]any{"anyOf": []any{typeOf(rt.Elem()), map[string]any{"type": "null"}}}
		case reflect.Slice:
			return map[string]any{"type": []string{"array", "null"}, "items": typeOf(rt.Elem())}
		case reflect.Map:
			return map[string]any{"type": []string{"object", "null"}, "additionalProperties": typeOf(rt.Elem())}
		case reflect.Struct:
			name := rt.Name()
			if _, ok := defs[name]; !ok {
				defs[name] = nil // a recursive reference sees it defined
				props, required := map[string]any{}, []string{}
				for i := 0; i < rt.NumField(); i++ {
					f := rt.Field(i)
					tag := f.Tag.Get("json")
					if !f.IsExported() || tag == "-" || tag == "" {
						continue
					}
					key, opts, _ := strings.Cut(tag, ",")
					p := typeOf(f.Type)
					if d := docs[path.Base(rt.PkgPath())+"."+rt.Name()+"."+f.Name]; d != "" {
						p = withDescription(p, d)
					}
					props[key] = p
					if !strings.Contains(opts, "omitempty") {
						required = append(required, key)
					}
				}
				def := map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
				if d := docs[path.Base(rt.PkgPath())+"."+rt.Name()]; d != "" {
					def["description"] = d
				}
				defs[name] = def
			}
			return map[string]any{"$ref": "#/$defs/" + name}
		}
		t.Fatalf("schema: no JSON type for %v", rt)
		return nil
	}
	root := typeOf(reflect.TypeOf(Results{}))
	results := defs["Results"].(map[string]any)
	results["properties"].(map[string]any)["schema_version"] = withDescription(map[string]any{"const": SchemaVersion},
		"The layout's version; this schema describes exactly this one.")
	out := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"title":       "cellbench results.json",
		"description": "Everything one `harness compare` (or `run`) measured, written beside report.md. Generated from harness/report's Go types by TestResultsSchema; docs/measurement.md says what the figures mean.",
		"$ref":        root["$ref"],
		"$defs":       defs,
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// withDescription adds a description beside a type (beside a $ref too:
// 2020-12 allows siblings of $ref).
func withDescription(p map[string]any, d string) map[string]any {
	out := map[string]any{"description": d}
	for k, v := range p {
		out[k] = v
	}
	return out
}

// fieldDocs maps "package.Type.Field" and "package.Type" to their doc
// comments (one line) in the packages in dirs.
func fieldDocs(t *testing.T, dirs ...string) map[string]string {
	out := map[string]string{}
	for _, dir := range dirs {
		fset := token.NewFileSet()
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		pkg, err := doc.NewFromFiles(fset, files, dir, doc.AllDecls)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range pkg.Types {
			out[pkg.Name+"."+typ.Name] = oneLine(typ.Doc)
			for _, spec := range typ.Decl.Specs {
				st, ok := spec.(*ast.TypeSpec).Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, f := range st.Fields.List {
					text := f.Doc.Text()
					if text == "" {
						text = f.Comment.Text()
					}
					for _, n := range f.Names {
						if text != "" {
							out[pkg.Name+"."+typ.Name+"."+n.Name] = oneLine(text)
						}
					}
				}
			}
		}
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
