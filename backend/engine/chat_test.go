package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/compute/cpu"
	"github.com/omnikv-triton/omnikv-triton/backend/internal/testmodel"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// The chat golden: conversations whose turns end every way a turn can end. testdata/chat_turns.json holds,
// for each, the answers the engine gave (greedy) and, for each turn, the context Hugging Face's
// apply_chat_template(messages so far, add_generation_prompt=True) tokenizes to
// (tests/reference/chat/make_chat_golden.py). The test checks that the engine feeds exactly that context.
// OMNIKV_RECORD_CHAT=1 rewrites the answers (then run the script for the contexts).
type chatTurn struct {
	User      string   `json:"user"`
	MaxTokens int      `json:"max_tokens"`
	Stop      []string `json:"stop,omitempty"`
	CancelAt  int      `json:"cancel_at,omitempty"` // cancel once this many tokens were generated
}

type chatCase struct {
	Name     string     `json:"name"`
	Turns    []chatTurn `json:"turns"`
	Answers  []string   `json:"answers"`            // the assistant's content after each turn (recorded)
	Reasons  []string   `json:"reasons"`            // how each turn ended (recorded)
	Contexts [][]int32  `json:"contexts,omitempty"` // HF's tokens of each turn's context
}

var chatCases = []chatCase{
	{Name: "max_tokens", Turns: []chatTurn{{User: "Tell me a long story about a dog.", MaxTokens: 10}, {User: "What is my favourite colour?", MaxTokens: 12}, {User: "And the dog's name?", MaxTokens: 6}}},
	{Name: "eos", Turns: []chatTurn{{User: "Say hello.", MaxTokens: 64}, {User: "What is my favourite colour?", MaxTokens: 12}}},
	{Name: "stop_string", Turns: []chatTurn{{User: "Tell me a long story about a dog.", MaxTokens: 40, Stop: []string{"."}}, {User: "What happened next?", MaxTokens: 12}}},
	{Name: "cancel", Turns: []chatTurn{{User: "Tell me a long story about a dog.", MaxTokens: 40, CancelAt: 7}, {User: "What is my favourite colour?", MaxTokens: 12}}},
}

func smolEngine(t *testing.T, okv bool, opt Options) *Engine {
	t.Helper()
	m, err := llama.Load(testmodel.SmolLM2(t), cpu.New(), llama.Options{MaxContext: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if okv {
		c := omnikv.DefaultConfig(m.Layers)
		c.Budget = omnikv.Budget{Tokens: 16}
		if err := m.SetOmniKV(c); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := llama.LoadTokenizer(m.Set)
	if err != nil {
		t.Fatal(err)
	}
	opt.Tokenizer, opt.ChatTemplate = tok, true
	e, err := New(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestChatContextMatchesTemplate: whatever ended the turn before (max_tokens, end-of-sequence, a stop
// string, a cancel), a turn's context equals the chat template rendered over the whole conversation.
func TestChatContextMatchesTemplate(t *testing.T) {
	path := filepath.Join("testdata", "chat_turns.json")
	record := os.Getenv("OMNIKV_RECORD_CHAT") != ""
	var golden []chatCase
	if !record {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &golden); err != nil {
			t.Fatal(err)
		}
	}
	e := smolEngine(t, true, Options{})
	var cancelAt atomic.Int32 // > 0: cancel the running turn once it has generated this many tokens
	e.onOwners = func(owners []*Handle) {
		for _, h := range owners {
			if n := cancelAt.Load(); n > 0 && h.gen >= int(n) {
				h.Cancel()
			}
		}
	}
	out := slices.Clone(chatCases)
	for ci := range out {
		c := &out[ci]
		c.Answers, c.Reasons = nil, nil
		t.Run(c.Name, func(t *testing.T) {
			for k, turn := range c.Turns {
				cancelAt.Store(int32(turn.CancelAt))
				p := greedyParams(turn.MaxTokens)
				p.Stop = turn.Stop
				h, err := e.Generate(context.Background(), GenRequest{Session: c.Name, Start: k == 0, Text: turn.User, Params: p})
				if err != nil {
					t.Fatalf("turn %d: %v", k, err)
				}
				if !record {
					want := golden[ci].Contexts[k]
					if got := h.req.ctx; !slices.Equal(got, want) {
						t.Fatalf("turn %d: context differs from the template rendered over the conversation at token %d of %d/%d:\n got  %v\n want %v",
							k, commonPrefix(got, want), len(got), len(want), got, want)
					}
				}
				var text string
				var fin Event
				for ev := range h.Events() {
					text += ev.Text
					fin = ev
				}
				if fin.Err != nil {
					t.Fatalf("turn %d: %v", k, fin.Err)
				}
				c.Answers = append(c.Answers, text)
				c.Reasons = append(c.Reasons, fin.Reason.String())
				if !record && (golden[ci].Answers[k] != text || golden[ci].Reasons[k] != fin.Reason.String()) {
					t.Fatalf("turn %d: answer %q (%s), recorded %q (%s)", k, text, fin.Reason, golden[ci].Answers[k], golden[ci].Reasons[k])
				}
			}
			want := map[string]sample.FinishReason{"max_tokens": sample.FinishLength, "eos": sample.FinishStop, "stop_string": sample.FinishStop, "cancel": sample.FinishCancelled}[c.Name]
			if c.Reasons[0] != want.String() {
				t.Fatalf("turn 0 ended %s, the case wants %s", c.Reasons[0], want)
			}
		})
	}
	if record {
		b, _ := json.MarshalIndent(out, "", " ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s: now run tests/reference/chat/make_chat_golden.py for the contexts", path)
	}
}
