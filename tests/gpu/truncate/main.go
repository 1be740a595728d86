// Command truncate writes a copy of a Llama GGUF model with only its first layers: the real weights, types
// and tokenizer of a model too big to carry to the GPU machine (SmolLM2's 98 MB against a 64 MiB limit), cut
// to fit. The output is still a valid model of fewer layers; its text means nothing, but a device comparison
// on it runs the real weights' kernels. tests/gpu/build.sh picks the largest layer count that fits.
//
//	go run ./tests/gpu/truncate -in MODEL.gguf -out OUT.gguf (-layers N | -max-bytes B)
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"

	"github.com/omnikv-triton/omnikv-triton/backend/weights"
)

func main() {
	in := flag.String("in", "", "the GGUF model to cut")
	out := flag.String("out", "", "the GGUF file to write")
	layers := flag.Int("layers", 0, "layers to keep")
	maxBytes := flag.Int64("max-bytes", 0, "instead of -layers: keep as many layers as fit in this many bytes")
	flag.Parse()
	if err := run(*in, *out, *layers, *maxBytes); err != nil {
		fmt.Fprintf(os.Stderr, "truncate: %v\n", err)
		os.Exit(1)
	}
}

var blockRE = regexp.MustCompile(`^blk\.(\d+)\.`)

func run(in, out string, layers int, maxBytes int64) error {
	if in == "" || out == "" || (layers <= 0) == (maxBytes <= 0) {
		return fmt.Errorf("need -in, -out and one of -layers N or -max-bytes B")
	}
	set, err := weights.Open(in)
	if err != nil {
		return err
	}
	defer set.Close()
	if set.GGUF == nil {
		return fmt.Errorf("%s: not a GGUF file", in)
	}
	arch, err := set.GGUF.String("general.architecture")
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	countKey := arch + ".block_count"
	total, err := set.GGUF.Uint(countKey)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	// Bytes outside the layers (embedding, head, norms, metadata), and each layer's.
	var shared int64
	perLayer := make([]int64, total)
	for name, t := range set.Tensors {
		if m := blockRE.FindStringSubmatch(name); m != nil {
			l, _ := strconv.Atoi(m[1])
			if l < int(total) {
				perLayer[l] += int64(len(t.Data))
			}
			continue
		}
		shared += int64(len(t.Data))
	}
	fi, err := os.Stat(in)
	if err != nil {
		return err
	}
	var tensorBytes int64
	for _, b := range perLayer {
		tensorBytes += b
	}
	shared += fi.Size() - tensorBytes - shared // metadata (tokenizer) and padding, counted as shared
	if maxBytes > 0 {
		size := shared
		for layers = 0; layers < int(total) && size+perLayer[layers] <= maxBytes; layers++ {
			size += perLayer[layers]
		}
		if layers == 0 {
			return fmt.Errorf("%s: not even one layer fits in %d bytes (%d shared)", in, maxBytes, shared)
		}
	}
	if layers > int(total) {
		return fmt.Errorf("%s has %d layers, asked for %d", in, total, layers)
	}
	var kv []weights.KV
	for _, k := range set.GGUF.Keys() {
		v, _ := set.GGUF.Get(k)
		if k == countKey { // the same GGUF type as the file's
			switch v.(type) {
			case uint32:
				v = uint32(layers)
			case uint64:
				v = uint64(layers)
			case int32:
				v = int32(layers)
			default:
				return fmt.Errorf("%s: %s has type %T", in, countKey, v)
			}
		}
		kv = append(kv, weights.KV{Key: k, Value: v})
	}
	var ts []*weights.Tensor
	for _, name := range set.Names() {
		if m := blockRE.FindStringSubmatch(name); m != nil {
			if l, _ := strconv.Atoi(m[1]); l >= layers {
				continue
			}
		}
		ts = append(ts, set.Tensors[name])
	}
	if err := weights.WriteGGUF(out, kv, ts); err != nil {
		return err
	}
	fmt.Printf("%s: %d of %d layers, %d tensors\n", out, layers, total, len(ts))
	return nil
}
