// Command codes prints the outcome Go's config validator gives each document
// it is sent: one document per input line, hex-encoded (documents may hold
// any bytes, newlines and invalid UTF-8 included), and one line back per
// document, "ok" or the contract code, written as soon as it is known.
//
// It is the Go half of the Pingora router's differential property test
// (pingora-router/tests/config_props.rs), which generates documents, sends
// them here and asserts that the Rust parser gives each the same code.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"cellbench/config"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "codes:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	// A line is twice the document; the largest document is 16 MiB.
	lines.Buffer(make([]byte, 64<<10), 2*config.MaxDocumentBytes+2)
	w := bufio.NewWriter(out)
	for lines.Scan() {
		doc, err := hex.DecodeString(lines.Text())
		if err != nil {
			return fmt.Errorf("a line is not hex: %w", err)
		}
		if _, err := fmt.Fprintln(w, outcome(doc)); err != nil {
			return err
		}
		// The test waits for each answer before it sends the next document.
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return lines.Err()
}

func outcome(doc []byte) string {
	if _, err := config.Parse(doc); err != nil {
		return config.CodeOf(err)
	}
	return "ok"
}
