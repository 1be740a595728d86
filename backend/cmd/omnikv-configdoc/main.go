package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

func main() {
	out := flag.String("o", serve.ConfigDocPath, "file to write (relative to the working directory), or - for stdout")
	check := flag.Bool("check", false, "do not write: exit 1 when the file differs from the generated text")
	flag.Parse()
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "omnikv-configdoc:", err)
		os.Exit(1)
	}
}

func run(out string, check bool) error {
	text := []byte(serve.ConfigReference())
	switch {
	case out == "-":
		_, err := os.Stdout.Write(text)
		return err
	case check:
		old, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("reading %s: %w", out, err)
		}
		if !bytes.Equal(old, text) {
			return fmt.Errorf("%s is out of date: run go run ./backend/cmd/omnikv-configdoc from the repository root", out)
		}
		return nil
	}
	if err := os.WriteFile(out, text, 0o644); err != nil {
		return fmt.Errorf("writing the reference: %w", err)
	}
	fmt.Fprintln(os.Stderr, "omnikv-configdoc: wrote", out)
	return nil
}
