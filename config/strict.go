package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// checkStrictJSON walks the token stream once before decoding and rejects
// what encoding/json would otherwise accept silently: duplicate object keys
// (the last one would win), null values (they would read as "absent" in Go
// but as a type error elsewhere) and trailing data after the document.
// Both routers apply the same rule, so a document means one thing everywhere.
func checkStrictJSON(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := walkValue(dec, "$"); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeParseError, "unexpected data after the document")
	}
	return nil
}

func walkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	switch t := tok.(type) {
	case nil:
		return errorf(CodeParseError, "%s: null is not allowed (leave the field out instead)", path)
	case json.Delim:
		switch t {
		case '{':
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
				if err := walkValue(dec, path+"."+key); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walkValue(dec, path+"[]"); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return syntaxError(err)
		}
	}
	return nil
}

func syntaxError(err error) error {
	if errors.Is(err, io.EOF) {
		return errorf(CodeParseError, "unexpected end of document")
	}
	return errorf(CodeParseError, "%s", trimJSONPrefix(err.Error()))
}
