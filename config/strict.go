package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// checkStrictJSON walks the document once, in document order, against the
// shape of the Go types and rejects everything encoding/json would let
// through or decide by itself: duplicate object keys (the last one would
// win), null values (read as "absent"), keys that match a field only when
// case is folded ("Version"), trailing data, and wrong types. The first fault
// in document order wins, which is also how serde reports, so the Go and Rust
// validators agree on the code of a document with several faults. After this
// walk, decoding cannot fail.
func checkStrictJSON(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := walkValue(dec, documentShape, "document"); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeParseError, "unexpected data after the document")
	}
	return nil
}

// shape is what the schema expects at one place in a document.
type shape struct {
	kind   reflect.Kind      // String, Int64, Float64, Struct or Map
	fields map[string]*shape // Struct: exact JSON names
	elem   *shape            // Map: the value shape
}

var documentShape = shapeOf(reflect.TypeOf(Config{}))

func shapeOf(t reflect.Type) *shape {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &shape{kind: reflect.Struct, fields: map[string]*shape{}}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			s.fields[name] = shapeOf(t.Field(i).Type)
		}
		return s
	case reflect.Map:
		return &shape{kind: reflect.Map, elem: shapeOf(t.Elem())}
	default:
		return &shape{kind: t.Kind()}
	}
}

func (s *shape) describe() string {
	switch s.kind {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	default:
		return "a string"
	}
}

func walkValue(dec *json.Decoder, want *shape, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	if tok == nil {
		return errorf(CodeParseError, "%s: null is not allowed (leave the field out instead)", path)
	}
	if delim, ok := tok.(json.Delim); ok && delim == '{' && (want.kind == reflect.Struct || want.kind == reflect.Map) {
		return walkObject(dec, want, path)
	}
	if !scalarFits(tok, want.kind) {
		return errorf(CodeParseError, "%s: expected %s, got %s", path, want.describe(), describeToken(tok))
	}
	return nil
}

func walkObject(dec *json.Decoder, want *shape, path string) error {
	seen := make(map[string]bool)
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		key := keyTok.(string)
		if seen[key] {
			return errorf(CodeParseError, "%s: duplicate key %q", path, key)
		}
		seen[key] = true
		next := want.elem
		if want.kind == reflect.Struct {
			if next = want.fields[key]; next == nil {
				return errorf(CodeUnknownField, "%s: unknown field %q", path, key)
			}
		}
		if err := walkValue(dec, next, path+"."+key); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return syntaxError(err)
	}
	return nil
}

// scalarFits reports whether a token can be decoded into kind; integers are
// checked with the same ParseInt that encoding/json uses, so 1.0, 1e3 and
// values beyond 64 bits are type errors.
func scalarFits(tok json.Token, kind reflect.Kind) bool {
	switch v := tok.(type) {
	case string:
		return kind == reflect.String
	case json.Number:
		switch kind {
		case reflect.Int64:
			_, err := strconv.ParseInt(string(v), 10, 64)
			return err == nil
		case reflect.Float64:
			_, err := strconv.ParseFloat(string(v), 64)
			return err == nil
		}
	}
	return false
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case string:
		return "a string"
	case json.Number:
		return "the number " + string(v)
	case bool:
		return "a boolean"
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	}
	return "a value"
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		return errorf(CodeParseError, "unexpected end of document")
	}
	return errorf(CodeParseError, "%s", trimJSONPrefix(err.Error()))
}
