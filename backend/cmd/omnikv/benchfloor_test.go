package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
)

// runCaptured runs the omnikv bench command with args and returns what it printed on stdout.
func runCaptured(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	runErr := runBench(args)
	os.Stdout = saved
	w.Close()
	return <-done, runErr
}

func TestFloorMS(t *testing.T) {
	for _, c := range []struct {
		name string
		bw   bandwidths
		w    stepWork
		want float64
	}{
		// 16 GB of weights at 4800 GB/s: 3.33 ms; plus 2 GB of KV: 0.42 ms; plus 0.2 GB fetched at 50 GB/s: 4 ms.
		{"weights", bandwidths{Mem: 4800}, stepWork{WeightBytes: 16e9}, 16e9 / 4800e9 * 1e3},
		{"weights+kv", bandwidths{Mem: 4800}, stepWork{WeightBytes: 16e9, KVRead: 2e9}, 18e9 / 4800e9 * 1e3},
		{"fetch counted", bandwidths{Mem: 4800, Link: 50}, stepWork{WeightBytes: 16e9, Fetched: 2e8}, 16e9/4800e9*1e3 + 4},
		{"fetch not counted without a link figure", bandwidths{Mem: 4800}, stepWork{WeightBytes: 16e9, Fetched: 2e8}, 16e9 / 4800e9 * 1e3},
	} {
		if got := c.bw.floorMS(c.w); got < c.want*0.999999 || got > c.want*1.000001 {
			t.Errorf("%s: floor %.6f ms, want %.6f", c.name, got, c.want)
		}
	}
}

// The bench plumbing end to end on the CPU device with the tiny synthetic shape: every mode the GPU script
// runs (dense, OmniKV resident, OmniKV offloaded to a file; batch 1 and 2), each line with its floor.
func TestBenchSynthetic(t *testing.T) {
	// The tiny shape's matrices per layer: q and o 256x256, k and v 128x256, gate, up and down 512x256, in
	// q4_0 (18 bytes per 32 weights); the output head 1024x256 in q8_0 (34 bytes per 32).
	const weightBytes = 4*(2*256*256+2*128*256+3*512*256)/32*18 + 1024*256/32*34
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		args  []string
		lines int
	}{
		{"dense and omnikv", []string{"--context", "512", "--modes", "dense,omnikv"}, 2},
		{"omnikv offloaded to a file", []string{"--context", "512", "--modes", "omnikv", "--offload-dir", dir}, 1},
		{"omnikv resident", []string{"--context", "512", "--modes", "omnikv", "--sparse-resident"}, 1},
		{"batch", []string{"--context", "512", "--batch", "1,2", "--modes", "dense,omnikv"}, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--synthetic-model", "tiny:q4", "--decode-tokens", "4", "--synthetic-kv", "--json",
				"--filter-layers", "1", "--budget", "64", "--hbm-gbps", "100"}, c.args...)
			out, err := runCaptured(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			var kvRead = map[string]int64{}
			n := 0
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				var r struct {
					Mode        string  `json:"mode"`
					Batch       int     `json:"batch"`
					Decode      float64 `json:"decode_ms_per_token"`
					Step        float64 `json:"decode_ms_per_step"`
					Floor       float64 `json:"floor_ms_per_token"`
					FloorStep   float64 `json:"floor_ms_per_step"`
					WeightBytes int64   `json:"weight_bytes_per_step"`
					KVRead      int64   `json:"kv_bytes_read_per_step"`
					Fetched     int64   `json:"kv_bytes_fetched_per_step"`
					Mem         float64 `json:"floor_mem_gb_s"`
				}
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				n++
				floor, ms := r.Floor+r.FloorStep, r.Decode+r.Step
				if r.WeightBytes != weightBytes || r.Mem != 100 || floor <= 0 || ms <= 0 || r.KVRead <= 0 {
					t.Errorf("%s: %+v: want %d weight bytes, 100 GB/s, a floor, a time and KV read", c.name, r, weightBytes)
				}
				if want := float64(r.WeightBytes+r.KVRead) / 100e9 * 1e3; r.Fetched == 0 && (floor < want*0.999 || floor > want*1.001) {
					t.Errorf("%s: floor %.5f ms, want (weights + KV) / 100 GB/s = %.5f", r.Mode, floor, want)
				}
				if r.Mode == "omnikv" && r.Fetched <= 0 {
					t.Errorf("omnikv at 512 tokens with a budget of 64 fetched nothing: %+v", r)
				}
				kvRead[r.Mode] = max(kvRead[r.Mode], r.KVRead/int64(max(1, r.Batch)))
			}
			if n != c.lines {
				t.Fatalf("%d result lines, want %d:\n%s", n, c.lines, out)
			}
			if d, o := kvRead["dense"], kvRead["omnikv"]; d > 0 && o > 0 && o >= d {
				t.Errorf("omnikv reads %d KV bytes a step, dense %d: want fewer", o, d)
			}
		})
	}
}

func TestBenchModelFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--context", "64"}, "give --model or --synthetic-model"},
		{[]string{"--model", "x.gguf", "--synthetic-model", "tiny"}, "give --model or --synthetic-model"},
		{[]string{"--synthetic-model", "llama9-1b"}, `unknown shape "llama9-1b"`},
		{[]string{"--synthetic-model", "tiny:q2"}, `unknown type "q2"`},
		{[]string{"--synthetic-model", "tiny", "--device", "tpu:0"}, "--device"},
	} {
		_, err := runCaptured(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}
