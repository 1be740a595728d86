package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// templateCase is one case of tests/reference/chat/expected_templates.json: a conversation rendered by
// Hugging Face's apply_chat_template (tests/reference/chat/make_template_golden.py).
type templateCase struct {
	Template            string            `json:"template"`
	Special             map[string]string `json:"special"`
	Vars                map[string]any    `json:"vars"`
	Messages            []struct{ Role, Content string }
	AddGenerationPrompt bool   `json:"add_generation_prompt"`
	Text                string `json:"text"`
	Error               string `json:"error"`
}

// TestTemplateGolden renders SmolLM2's, Llama-3.1's, Llama-3.2's, Qwen2.5's and Mistral-Nemo's own chat
// templates over the golden's conversations and compares with transformers: the same text, or an error
// carrying the message the template raised. SmolLM2's template and special tokens come from the model's GGUF;
// the others' templates from .cache/chat/templates (tests/reference/chat/fetch.sh), their special tokens from
// the golden (as the models' tokenizer_config.json declares them).
func TestTemplateGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "tests/reference/chat/expected_templates.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []templateCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	byTemplate := map[string][]templateCase{}
	var names []string
	for _, c := range cases {
		if byTemplate[c.Template] == nil {
			names = append(names, c.Template)
		}
		byTemplate[c.Template] = append(byTemplate[c.Template], c)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var tok *Tokenizer
			if name == "smollm2" {
				tok = smolFromGGUF(t) // the vocabulary's own special tokens
			} else {
				path := needFile(t, filepath.Join(repoRoot(t), ".cache/chat/templates", name+".jinja"),
					"run tests/reference/chat/fetch.sh (scripts/test.sh does)")
				src, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				tok = &Tokenizer{bos: -1, eos: -1, unk: -1, pad: -1}
				tok.SetChatTemplate(string(src))
			}
			bad, raised := 0, 0
			for i, c := range byTemplate[name] {
				msgs := make([]Message, len(c.Messages))
				for j, m := range c.Messages {
					msgs[j] = Message{Role: m.Role, Content: m.Content}
				}
				vars := map[string]any{}
				if name != "smollm2" {
					for k, v := range c.Special {
						vars[k] = v
					}
				}
				for k, v := range c.Vars {
					vars[k] = v
				}
				got, err := tok.RenderChat(msgs, ChatOptions{AddGenerationPrompt: c.AddGenerationPrompt, Vars: vars})
				switch {
				case c.Error != "" && (err == nil || !strings.Contains(err.Error(), c.Error)):
					bad++
					t.Errorf("case %d %v gen=%v vars=%v: got %q, %v; want the error %q", i, msgs, c.AddGenerationPrompt, c.Vars, got, err, c.Error)
				case c.Error != "":
					raised++
				case err != nil || got != c.Text:
					bad++
					t.Errorf("case %d %v gen=%v vars=%v:\n got %q (%v)\nwant %q", i, msgs, c.AddGenerationPrompt, c.Vars, got, err, c.Text)
				}
				if bad >= 5 {
					t.Fatal("too many mismatches")
				}
			}
			if bad == 0 {
				t.Logf("%d cases equal transformers' apply_chat_template (%d raise the template's error)", len(byTemplate[name]), raised)
			}
		})
	}
}
