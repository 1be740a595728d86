// Command mktiny writes one tiny random-weight model directory (config.json + model.safetensors).
//
//	go run ./tests/reference/tinymodel/cmd/mktiny -out .cache/tiny/tiny_llama_f32 -preset tiny_llama_f32
//
// With -list it prints the preset names. It prints the sha256 of each file it wrote.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/omnikv-triton/omnikv-triton/tests/reference/tinymodel"
)

func main() {
	out := flag.String("out", "", "directory to write (created if missing)")
	preset := flag.String("preset", "", "preset name")
	list := flag.Bool("list", false, "print the preset names and exit")
	flag.Parse()
	if err := run(*out, *preset, *list); err != nil {
		fmt.Fprintln(os.Stderr, "mktiny:", err)
		os.Exit(1)
	}
}

func run(out, preset string, list bool) error {
	if list {
		for _, s := range tinymodel.Presets() {
			fmt.Println(s.Name)
		}
		return nil
	}
	if out == "" || preset == "" {
		return fmt.Errorf("need -out DIR and -preset NAME (or -list)")
	}
	s, err := tinymodel.Preset(preset)
	if err != nil {
		return err
	}
	if err := tinymodel.Write(out, s); err != nil {
		return err
	}
	for _, f := range []string{tinymodel.ConfigFile, tinymodel.WeightsFile} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		fmt.Printf("%x  %s\n", sha256.Sum256(b), filepath.Join(out, f))
	}
	return nil
}
