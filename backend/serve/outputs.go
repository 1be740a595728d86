package serve

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
)

// The vLLM backend's additional outputs (sent when the return_* inputs ask for them).
const (
	OutCumLogprob = "cumulative_logprob" // FP32 (n): the chosen tokens' log-probabilities summed so far
	OutLogprobs   = "logprobs"           // BYTES (n): JSON per token since the previous response
	OutNumInput   = "num_input_tokens"   // UINT32 (1): the prompt's tokens
	OutNumOutput  = "num_output_tokens"  // UINT32 (n): tokens generated since the previous response
)

// completion accumulates one completion's events between responses.
type completion struct {
	text    string  // not yet sent
	ids     []int32 // not yet sent
	lps     []json.RawMessage
	cum     float64 // the chosen tokens' log-probabilities so far
	pending int     // tokens not yet reported (num_output_tokens)
	gen     int     // tokens generated
	done    bool
	fin     engine.Event // the Done event
}

// add records a token event; tokenText decodes one id (logprobs' decoded_token).
func (c *completion) add(ev engine.Event, logprobs bool, tokenText func(int32) string) {
	c.text += ev.Text
	c.ids = append(c.ids, ev.Token)
	c.gen++
	c.pending++
	if !logprobs {
		return
	}
	c.cum += float64(ev.Logprob)
	// vLLM's shape: {"<id>": {"logprob", "rank", "decoded_token"}}, the chosen token first.
	obj := []byte{'{'}
	put := func(id int32, lp float32, rank int) {
		if len(obj) > 1 {
			obj = append(obj, ',')
		}
		obj = strconv.AppendQuote(obj, strconv.Itoa(int(id)))
		obj = append(obj, `:{"logprob":`...)
		obj = appendFloat(obj, lp)
		obj = append(obj, `,"rank":`...)
		obj = strconv.AppendInt(obj, int64(rank), 10)
		obj = append(obj, `,"decoded_token":`...)
		b, _ := json.Marshal(tokenText(id)) // escapes as JSON wants
		obj = append(append(obj, b...), '}')
	}
	put(ev.Token, ev.Logprob, ev.Rank)
	for i, t := range ev.Top {
		if t.ID != ev.Token {
			put(t.ID, t.Logprob, i+1)
		}
	}
	c.lps = append(c.lps, append(obj, '}'))
}

// response builds a response over every completion's pending output, and clears it. final adds the
// finish reasons and token counts (always: finish_reason, prompt_tokens, completion_tokens).
func (g *Generator) response(gr *GenRequest, comps []*completion, promptTokens int, final bool) Response {
	n := len(comps)
	texts := make([]string, n)
	var ids []int32
	for i, c := range comps {
		texts[i] = c.text
		ids = append(ids, c.ids...)
	}
	out := []Tensor{StringTensor(OutText, texts...), Int32Tensor(OutIDs, ids...)}
	if final || gr.Return.FinishReason {
		reasons := make([]string, n)
		for i, c := range comps {
			reasons[i] = "None"
			if c.done {
				reasons[i] = c.fin.Reason.String()
			}
		}
		out = append(out, StringTensor(OutFinish, reasons...))
	}
	if final {
		gen := make([]int32, n)
		for i, c := range comps {
			gen[i] = int32(c.fin.Stats.GeneratedTokens)
		}
		out = append(out, int32Scalar(OutPromptN, promptTokens), Int32Tensor(OutGenerated, gen...))
	}
	if gr.Return.CumulativeLogprob {
		v := make([]float32, n)
		for i, c := range comps {
			v[i] = float32(c.cum)
			if !gr.LogprobsSet {
				v[i] = float32(math.NaN())
			}
		}
		out = append(out, fp32Tensor(OutCumLogprob, v...))
	}
	if gr.Return.Logprobs {
		v := make([]string, n)
		for i, c := range comps {
			v[i] = "null"
			if gr.LogprobsSet {
				b, _ := json.Marshal(c.lps)
				if c.lps == nil {
					b = []byte("[]")
				}
				v[i] = string(b)
			}
		}
		out = append(out, StringTensor(OutLogprobs, v...))
	}
	if gr.Return.NumInputTokens {
		out = append(out, uint32Tensor(OutNumInput, uint32(promptTokens)))
	}
	if gr.Return.NumOutputTokens {
		v := make([]uint32, n)
		for i, c := range comps {
			v[i] = uint32(c.pending)
		}
		out = append(out, uint32Tensor(OutNumOutput, v...))
	}
	for _, c := range comps {
		c.text, c.ids, c.lps, c.pending = "", c.ids[:0], nil, 0
	}
	return Response{Final: final, Outputs: out}
}

// appendFloat writes a log-probability as JSON; -Inf (a token that cannot be drawn) as Python's json writes
// it, -Infinity, as the vLLM backend would send it.
func appendFloat(b []byte, v float32) []byte {
	switch {
	case math.IsInf(float64(v), -1):
		return append(b, "-Infinity"...)
	case math.IsNaN(float64(v)):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}

func fp32Tensor(name string, vals ...float32) Tensor {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	return Tensor{Name: name, DataType: TypeFP32, Shape: []int64{int64(len(vals))}, Data: data}
}

func uint32Tensor(name string, vals ...uint32) Tensor {
	data := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint32(data, v)
	}
	return Tensor{Name: name, DataType: TypeUint32, Shape: []int64{int64(len(vals))}, Data: data}
}
