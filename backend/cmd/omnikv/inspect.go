package main

import (
	"flag"
	"fmt"
	"slices"

	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func runInspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	model := fs.String("model", "", "a .gguf file or a Hugging Face model directory")
	device := addDeviceFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, tok, err := loadModel(*model, *device, 0, false)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Println(m)
	_, chatErr := tok.ApplyChat([]tokenizer.Message{{Role: "user", Content: "hi"}}, true)
	fmt.Printf("vocab %d, BOS %d, EOS %v, chat template usable: %v\n", tok.VocabSize(), m.BOS, m.EOS, chatErr == nil)
	counts := map[weights.DType]int{}
	bytes := map[weights.DType]int{}
	for _, t := range m.Set.Tensors {
		counts[t.Type]++
		bytes[t.Type] += len(t.Data)
	}
	types := make([]weights.DType, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		fmt.Printf("  %-5v %4d tensors %8.1f MiB\n", t, counts[t], float64(bytes[t])/(1<<20))
	}
	return nil
}
