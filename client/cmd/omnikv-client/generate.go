package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client"
)

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var s sampling
	s.register(fs)
	model := fs.String("model", "omnikv", "model name")
	prompt := fs.String("prompt", "", "the prompt text")
	promptFile := fs.String("prompt-file", "", "read the prompt from this file instead")
	stream := fs.Bool("stream", false, "print the text piece by piece as the server decodes it")
	exclude := fs.Bool("exclude-input", false, "ask the server to leave the prompt out of the output (exclude_input_in_output)")
	raw := fs.Bool("raw", false, "send the prompt as it is, without the model's chat template (apply_chat_template=false)")
	id := fs.String("id", "", "request id (optional)")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: no limit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *promptFile != "" {
		b, err := os.ReadFile(*promptFile)
		if err != nil {
			return fmt.Errorf("prompt file: %w", err)
		}
		*prompt = string(b)
	}
	if *prompt == "" {
		fmt.Fprintln(stderr, "generate: --prompt or --prompt-file is required")
		return errUsage
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	req := client.GenerateRequest{Model: *model, ID: *id, Prompt: *prompt, Stream: *stream, MaxTokens: s.maxTokens, Sampling: s.params()}
	if *exclude {
		req.ExcludeInput = client.Ptr(true)
	}
	if *raw { // without it the server wraps the prompt as a user turn in the model's chat template
		req.Inputs = append(req.Inputs, client.BoolTensor("apply_chat_template", false))
	}
	pieces := 0
	res, err := cl.Generate(ctx, req, func(d client.Delta) error {
		if d.Text == "" {
			return nil
		}
		pieces++
		_, err := io.WriteString(stdout, d.Text)
		return err
	})
	if res.Text != "" && !strings.HasSuffix(res.Text, "\n") {
		fmt.Fprintln(stdout)
	}
	writeStats(stderr, res, pieces)
	return err
}

// writeStats prints one line of statistics: generated tokens (completion_tokens if the server
// reported it, else the number of output ids, else the number of text pieces received), wall
// seconds from request to final response, tokens per second over that time, and time to first
// token.
func writeStats(w io.Writer, res client.Result, pieces int) {
	tokens, unit := res.Tokens(), "tokens"
	if tokens == 0 && pieces > 0 {
		tokens, unit = pieces, "pieces"
	}
	secs := res.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(tokens) / secs
	}
	fmt.Fprintf(w, "%s=%d seconds=%.3f %s/s=%.2f ttft=%.3fs", unit, tokens, secs, unit, rate, res.FirstToken.Seconds())
	if res.HasUsage {
		fmt.Fprintf(w, " prompt_tokens=%d", res.PromptTokens)
	}
	if res.FinishReason != "" {
		fmt.Fprintf(w, " finish=%s", res.FinishReason)
	}
	if res.FirstToken > 0 && tokens > 1 {
		// Decode rate after the first token, which excludes the prompt's prefill.
		if d := res.Elapsed - res.FirstToken; d > time.Millisecond {
			fmt.Fprintf(w, " decode_%s/s=%.2f", unit, float64(tokens-1)/d.Seconds())
		}
	}
	fmt.Fprintln(w)
}
