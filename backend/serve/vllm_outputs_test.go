package serve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func samplingJSON(s string) Tensor { return StringTensor(InSampling, s) }

func strs(t Tensor) ([][]byte, error) { return t.Strings() }

func fp32s(t Tensor) []float32 {
	var v []float32
	for i := 0; i+4 <= len(t.Data); i += 4 {
		v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(t.Data[i:])))
	}
	return v
}

func uint32s(t Tensor) []uint32 {
	var v []uint32
	for i := 0; i+4 <= len(t.Data); i += 4 {
		v = append(v, binary.LittleEndian.Uint32(t.Data[i:]))
	}
	return v
}

// The vLLM backend's additional outputs and n completions, streamed and not; streaming never echoes the
// prompt.
func TestVLLMOutputs(t *testing.T) {
	g := newGen(t, "generate", nil)
	ret := []Tensor{boolTensor(InReturnFinish, true), boolTensor(InReturnCumLogprob, true), boolTensor(InReturnLogprobs, true),
		boolTensor(InReturnNumInput, true), boolTensor(InReturnNumOutput, true)}
	sp := `{"temperature": "0.8", "top_k": "1", "n": 3, "logprobs": 2, "max_tokens": "6", "seed": 5}`
	req := textReq("The capital of France is", append([]Tensor{samplingJSON(sp), boolTensor(InStream, true)}, ret...)...)
	if err := g.Check(req); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := Serve(context.Background(), g, req, rec); err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 3)
	var tokens [3]int
	var cum []float32
	for ri, r := range rec.responses {
		s, err := strs(output(&r, OutText))
		if err != nil || len(s) != 3 {
			t.Fatalf("response %d: text_output %v %v", ri, s, err)
		}
		fr, _ := strs(output(&r, OutFinish))
		lp, _ := strs(output(&r, OutLogprobs))
		nout := uint32s(output(&r, OutNumOutput))
		if nin := uint32s(output(&r, OutNumInput)); len(nin) != 1 || nin[0] == 0 {
			t.Fatalf("response %d: num_input_tokens %v", ri, nin)
		}
		for i := range 3 {
			texts[i] += string(s[i])
			tokens[i] += int(nout[i])
			if !r.Final && string(fr[i]) != "None" && tokens[i] < 6 { // a completion that ended says so
				t.Fatalf("response %d: finish_reason %q before the end", ri, fr[i])
			}
			var per []map[string]struct {
				Logprob float64 `json:"logprob"`
				Rank    int     `json:"rank"`
				Decoded string  `json:"decoded_token"`
			}
			if err := json.Unmarshal(lp[i], &per); err != nil || len(per) != int(nout[i]) {
				t.Fatalf("response %d: logprobs %s (%v) for %d tokens", ri, lp[i], err, nout[i])
			}
			for _, tok := range per {
				if len(tok) < 2 || len(tok) > 3 {
					t.Fatalf("logprobs entry %v: want the chosen token and the 2 most likely", tok)
				}
			}
		}
		cum = fp32s(output(&r, OutCumLogprob))
	}
	final := rec.responses[len(rec.responses)-1]
	fr, _ := strs(output(&final, OutFinish))
	for i := range 3 {
		if strings.Contains(texts[i], "The capital of France") {
			t.Fatalf("completion %d echoes the prompt when streaming: %q", i, texts[i])
		}
		if texts[i] != texts[0] || tokens[i] != 6 || string(fr[i]) != "length" || !(cum[i] < 0) {
			t.Fatalf("completion %d: %q %d tokens %q cumulative %v (top-1 draws: all equal the first %q)", i, texts[i], tokens[i], fr[i], cum[i], texts[0])
		}
	}
	// Without logprobs, the logprobs output is JSON null and the cumulative one NaN.
	req = textReq("Hi", append([]Tensor{samplingJSON(`{"max_tokens": 2}`)}, ret...)...)
	_, _, fin, err := run(t, g, req)
	if err != nil {
		t.Fatal(err)
	}
	if lp, _ := strs(output(fin, OutLogprobs)); string(lp[0]) != "null" || !math.IsNaN(float64(fp32s(output(fin, OutCumLogprob))[0])) {
		t.Fatalf("logprobs %q cumulative %v without logprobs asked", lp[0], fp32s(output(fin, OutCumLogprob)))
	}
}
