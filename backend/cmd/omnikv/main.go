// Command omnikv runs the engine locally, without Triton: generate text, benchmark prefill and decode, inspect
// a model file.
package main

import (
	"fmt"
	"os"
)

const usage = `omnikv: run Llama-family models locally (no Triton).

Usage:
  omnikv generate --model PATH (--prompt TEXT | --prompt-file F) [--max-tokens N] [--temperature T]
                  [--top-p P] [--top-k K] [--seed S] [--json] [--raw]
  omnikv bench    (--model PATH | --synthetic-model SHAPE[:TYPE]) [--context 128,2048,8192] [--decode-tokens N]
                  [--repeat R] [--batch 1,8] [--synthetic-kv] [--device cpu|cuda:0] [--hbm-gbps G] [--link-gbps G]
  omnikv inspect  --model PATH

PATH is a .gguf file or a Hugging Face model directory (config.json + safetensors).
Run "omnikv COMMAND -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "generate":
		err = runGenerate(args)
	case "bench":
		err = runBench(args)
	case "inspect":
		err = runInspect(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "omnikv: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "omnikv %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
