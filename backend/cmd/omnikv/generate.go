package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/omnikv-triton/omnikv-triton/backend/compute"
	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

type generateResult struct {
	PromptIDs       []int32 `json:"prompt_ids"`
	OutputIDs       []int32 `json:"output_ids"`
	Text            string  `json:"text"`
	FinishReason    string  `json:"finish_reason"`
	PrefillMS       float64 `json:"prefill_ms"`
	DecodeMSPerTok  float64 `json:"decode_ms_per_token"`
	PromptTokens    int     `json:"prompt_tokens"`
	GeneratedTokens int     `json:"generated_tokens"`
}

func runGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	model := fs.String("model", "", "a .gguf file or a Hugging Face model directory")
	device := addDeviceFlag(fs)
	prompt := fs.String("prompt", "", "the prompt text")
	promptFile := fs.String("prompt-file", "", "read the prompt from this file")
	maxTokens := fs.Int("max-tokens", 128, "tokens to generate at most")
	temp := fs.Float64("temperature", 0, "sampling temperature (0 = greedy)")
	topP := fs.Float64("top-p", 1, "nucleus sampling threshold in (0, 1]")
	topK := fs.Int("top-k", 0, "keep the k most likely tokens (0 = off)")
	minP := fs.Float64("min-p", 0, "drop tokens below min-p times the top probability (0 = off)")
	repPen := fs.Float64("repetition-penalty", 1, "penalty for tokens already seen (1 = off)")
	seed := fs.Uint64("seed", 0, "random seed (same seed, same output)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of streaming text")
	raw := fs.Bool("raw", false, "tokenize the prompt as is, without the model's chat template")
	kvDType := fs.String("kv-dtype", "fp16", "KV cache element type: fp16 or fp32")
	var stops stringList
	fs.Var(&stops, "stop", "stop string (repeatable)")
	okv := addOKVFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*prompt == "") == (*promptFile == "") {
		return errors.New("give exactly one of --prompt and --prompt-file")
	}
	text := *prompt
	if *promptFile != "" {
		b, err := os.ReadFile(*promptFile)
		if err != nil {
			return err
		}
		text = string(b)
	}
	kvdt, err := compute.ParseKVDType(*kvDType)
	if err != nil {
		return fmt.Errorf("--kv-dtype: %w", err)
	}
	params := sample.DefaultParams()
	params.Temperature, params.TopP, params.TopK = float32(*temp), float32(*topP), *topK
	params.MinP, params.RepetitionPenalty, params.Seed = float32(*minP), float32(*repPen), *seed
	params.MaxTokens, params.Stop = *maxTokens, stops
	if err := params.Validate(); err != nil {
		return err
	}

	m, tok, err := loadModel(*model, *device, 0, *asJSON)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := okv.apply(m); err != nil {
		return err
	}
	ids, err := encodePrompt(tok, text, *raw)
	if err != nil {
		return err
	}
	offDir, resident, err := okv.kvTier()
	if err != nil {
		return err
	}
	eng, err := engine.New(m, engine.Options{MaxSequences: 1, KVDType: kvdt, OffloadDir: offDir, SparseResident: resident})
	if err != nil {
		return err
	}
	defer eng.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	h, err := eng.Submit(ctx, engine.Request{Prompt: ids, Params: params})
	if err != nil {
		return err
	}
	res := generateResult{PromptIDs: ids, OutputIDs: []int32{}}
	out := engine.NewTextStream(tok, params.Stop)
	for ev := range h.Events() {
		if !ev.Done {
			res.OutputIDs = append(res.OutputIDs, ev.Token)
			delta, stopped := out.Add(ev.Token)
			if !*asJSON {
				fmt.Print(delta)
			}
			if stopped {
				h.Cancel()
			}
			continue
		}
		if ev.Err != nil {
			return ev.Err
		}
		res.FinishReason = ev.Reason.String()
		if out.Stopped() {
			res.FinishReason = sample.FinishStop.String()
			res.OutputIDs = res.OutputIDs[:out.Tokens()]
		}
		rest := out.Flush()
		res.Text = out.Text()
		res.PromptTokens, res.GeneratedTokens = ev.Stats.PromptTokens, len(res.OutputIDs)
		res.PrefillMS = ms(ev.Stats.Prefill)
		if n := ev.Stats.GeneratedTokens - 1; n > 0 {
			res.DecodeMSPerTok = ms(ev.Stats.Decode) / float64(n)
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetEscapeHTML(false)
			return enc.Encode(res)
		}
		fmt.Println(rest)
		fmt.Fprintf(os.Stderr, "[%d prompt tokens, prefill %.0f ms; %d tokens at %.1f ms/token; finish: %s]\n",
			res.PromptTokens, res.PrefillMS, res.GeneratedTokens, res.DecodeMSPerTok, res.FinishReason)
	}
	return nil
}

// encodePrompt tokenizes the prompt, wrapped in the model's chat template as a single user message unless raw
// is set or the model has no template.
func encodePrompt(tok *tokenizer.Tokenizer, text string, raw bool) ([]int32, error) {
	if !raw {
		chat, err := tok.ApplyChat([]tokenizer.Message{{Role: "user", Content: text}}, true)
		if err != nil {
			return nil, fmt.Errorf("%w (use --raw to send the prompt without a chat template)", err)
		}
		return tok.Encode(chat, false)
	}
	return tok.Encode(text, true)
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
