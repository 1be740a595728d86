package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/omnikv-triton/omnikv-triton/client"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// update is what one Triton response of the omnikv model says, one element per completion
// (n > 1 gives n of each).
type update struct {
	texts        []string            // text_output: each completion's new text (all of it when not streaming)
	finish       []string            // finish_reason: "None" until a completion ends (return_finish_reason), else only on the last response
	promptTokens int                 // prompt_tokens (last response)
	completion   []int               // completion_tokens (last response)
	hasUsage     bool                // the counts were present
	logprobs     [][]tokenLogprobRaw // logprobs: each completion's tokens since the previous response
}

// tokenLogprobRaw is one generated token as the backend's logprobs output lists it: the chosen
// token, then the most likely others.
type tokenLogprobRaw struct {
	chosen candidate
	others []candidate
}

type candidate struct {
	ID      int
	Logprob float64
	Rank    int // 1 for the most likely token
	Token   string
}

// decodeUpdate reads one response of the model.
func decodeUpdate(resp *pb.ModelInferResponse) (update, error) {
	var u update
	outs, err := client.DecodeOutputs(resp)
	if err != nil {
		return u, fmt.Errorf("decode response: %w", err)
	}
	for _, o := range outs {
		switch o.Name {
		case client.OutputText:
			if u.texts, err = o.Strings(); err != nil {
				return u, err
			}
		case client.OutputFinishReason:
			if u.finish, err = o.Strings(); err != nil {
				return u, err
			}
		case client.OutputPromptTokens, client.OutputCompletionTokens:
			v, err := o.Int32s()
			if err != nil {
				return u, err
			}
			if o.Name == client.OutputPromptTokens {
				if len(v) != 1 {
					return u, fmt.Errorf("output %s: want 1 value, got %d", o.Name, len(v))
				}
				u.promptTokens = int(v[0])
			} else {
				u.completion = make([]int, len(v))
				for i, x := range v {
					u.completion[i] = int(x)
				}
			}
			u.hasUsage = true
		case "logprobs":
			s, err := o.Strings()
			if err != nil {
				return u, err
			}
			u.logprobs = make([][]tokenLogprobRaw, len(s))
			for i, js := range s {
				if u.logprobs[i], err = parseLogprobList(js); err != nil {
					return u, fmt.Errorf("output logprobs[%d]: %w", i, err)
				}
			}
		}
	}
	return u, nil
}

// parseLogprobList reads one completion's logprobs element: JSON null, or a list with one object
// per token, {"<id>": {"logprob", "rank", "decoded_token"}, ...}, the chosen token first (so the
// keys' order matters and a Go map will not do). The backend writes an impossible token's
// log-probability as -Infinity, which is not JSON: it becomes -9999 (OpenAI's own floor).
func parseLogprobList(js string) ([]tokenLogprobRaw, error) {
	b := bytes.ReplaceAll([]byte(js), []byte(`"logprob":-Infinity`), []byte(`"logprob":-9999`))
	b = bytes.ReplaceAll(b, []byte(`"logprob":NaN`), []byte(`"logprob":-9999`))
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("not a JSON list: %w", err)
	}
	out := make([]tokenLogprobRaw, 0, len(list))
	for i, obj := range list {
		dec := json.NewDecoder(bytes.NewReader(obj))
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil, fmt.Errorf("token %d: want an object, got %s", i, obj)
		}
		var tok tokenLogprobRaw
		for n := 0; dec.More(); n++ {
			k, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("token %d: %w", i, err)
			}
			id, err := strconv.Atoi(fmt.Sprint(k))
			if err != nil {
				return nil, fmt.Errorf("token %d: key %v is not a token id", i, k)
			}
			var e struct {
				Logprob float64 `json:"logprob"`
				Rank    int     `json:"rank"`
				Decoded string  `json:"decoded_token"`
			}
			if err := dec.Decode(&e); err != nil {
				return nil, fmt.Errorf("token %d, id %d: %w", i, id, err)
			}
			c := candidate{ID: id, Logprob: e.Logprob, Rank: e.Rank, Token: e.Decoded}
			if n == 0 {
				tok.chosen = c
			} else {
				tok.others = append(tok.others, c)
			}
		}
		if _, err := dec.Token(); err != nil && err != io.EOF {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		out = append(out, tok)
	}
	return out, nil
}

func utf8Bytes(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}

// chatLogprobs turns tokens into a chat choice's logprobs: each token with the top most likely
// tokens at its position (the chosen one among them when it ranks within top).
func chatLogprobs(tokens []tokenLogprobRaw, top int) *ChatLogprobs {
	lp := &ChatLogprobs{Content: make([]TokenLogprob, 0, len(tokens))}
	for _, t := range tokens {
		all := append([]candidate{t.chosen}, t.others...)
		sort.SliceStable(all, func(i, j int) bool { return all[i].Rank < all[j].Rank })
		tops := []TopLogprob{}
		for _, c := range all {
			if c.Rank >= 1 && c.Rank <= top {
				tops = append(tops, TopLogprob{Token: c.Token, Logprob: c.Logprob, Bytes: utf8Bytes(c.Token)})
			}
		}
		lp.Content = append(lp.Content, TokenLogprob{Token: t.chosen.Token, Logprob: t.chosen.Logprob,
			Bytes: utf8Bytes(t.chosen.Token), TopLogprobs: tops})
	}
	return lp
}

// completionLogprobs turns tokens into a completion choice's legacy logprobs; offset is the
// byte offset of the first token in the choice's text.
func completionLogprobs(tokens []tokenLogprobRaw, offset int) *CompletionLogprobs {
	lp := &CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, t := range tokens {
		lp.Tokens = append(lp.Tokens, t.chosen.Token)
		lp.TokenLogprobs = append(lp.TokenLogprobs, t.chosen.Logprob)
		m := map[string]float64{t.chosen.Token: t.chosen.Logprob}
		for _, c := range t.others {
			if _, dup := m[c.Token]; !dup {
				m[c.Token] = c.Logprob
			}
		}
		lp.TopLogprobs = append(lp.TopLogprobs, m)
		lp.TextOffset = append(lp.TextOffset, offset)
		offset += len(t.chosen.Token)
	}
	return lp
}

// choice accumulates one choice across a request's responses.
type choice struct {
	index      int
	text       []byte
	finish     string
	tokens     []tokenLogprobRaw
	completion int  // completion_tokens
	started    bool // streaming: the first chunk (role, or echoed prompt) went out
	offset     int  // completions with logprobs: text bytes before the next token
}

// result holds every choice of a request, and the prompt tokens of all its prompts.
type result struct {
	choices      []*choice
	promptTokens int
}

func newResult(p *plan) *result {
	r := &result{choices: make([]*choice, len(p.jobs)*p.n)}
	for i := range r.choices {
		r.choices[i] = &choice{index: i}
	}
	return r
}

// finishReason maps the backend's finish reason to OpenAI's.
func finishReason(s string) string {
	switch s {
	case "cancelled", "abort":
		return "stop" // only a client that left cancels; it never reads this
	}
	return s
}

// usage sums the counts.
func (r *result) usage() Usage {
	u := Usage{PromptTokens: r.promptTokens}
	for _, c := range r.choices {
		u.CompletionTokens += c.completion
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// chatCompletion builds the non-streamed chat answer.
func (r *result) chatCompletion(p *plan, id string, created int64) ChatCompletion {
	out := ChatCompletion{ID: id, Object: "chat.completion", Created: created, Model: p.model, Usage: r.usage()}
	for _, c := range r.choices {
		ch := ChatChoice{Index: c.index, Message: ChatMessage{Role: "assistant", Content: string(c.text)}, FinishReason: c.finish}
		if p.topLogprobs >= 0 {
			ch.Logprobs = chatLogprobs(c.tokens, p.topLogprobs)
		}
		out.Choices = append(out.Choices, ch)
	}
	return out
}

// completion builds the non-streamed completions answer.
func (r *result) completion(p *plan, id string, created int64) Completion {
	u := r.usage()
	out := Completion{ID: id, Object: "text_completion", Created: created, Model: p.model, Usage: &u}
	for _, c := range r.choices {
		ch := CompletionChoice{Index: c.index, Text: string(c.text), FinishReason: client.Ptr(c.finish)}
		if p.topLogprobs >= 0 {
			ch.Logprobs = completionLogprobs(c.tokens, 0)
		}
		out.Choices = append(out.Choices, ch)
	}
	return out
}

// delta is what one response added to one choice.
type delta struct {
	c      *choice
	text   string
	tokens []tokenLogprobRaw
	finish bool // the choice ended with this response
}

// apply adds u, a response of j, to the choices, and returns what it added to each choice it
// changed (new text, new tokens or a finish reason), in choice order.
func (r *result) apply(p *plan, j job, u update) ([]delta, error) {
	if len(u.texts) > p.n || len(u.finish) > p.n || len(u.completion) > p.n || len(u.logprobs) > p.n {
		return nil, fmt.Errorf("the model answered %d/%d/%d/%d completions, %d were asked for",
			len(u.texts), len(u.finish), len(u.completion), len(u.logprobs), p.n)
	}
	var out []delta
	for i := range p.n {
		d := delta{c: r.choices[j.first+i]}
		if i < len(u.texts) {
			d.text = u.texts[i]
			d.c.text = append(d.c.text, d.text...)
		}
		if i < len(u.logprobs) {
			d.tokens = u.logprobs[i]
			d.c.tokens = append(d.c.tokens, d.tokens...)
		}
		if i < len(u.finish) && u.finish[i] != "" && u.finish[i] != "None" && d.c.finish == "" {
			d.c.finish, d.finish = finishReason(u.finish[i]), true
		}
		if i < len(u.completion) {
			d.c.completion = u.completion[i]
		}
		if d.text != "" || len(d.tokens) > 0 || d.finish {
			out = append(out, d)
		}
	}
	if u.hasUsage {
		r.promptTokens += u.promptTokens
	}
	return out, nil
}
