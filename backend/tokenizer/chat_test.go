package tokenizer

import (
	"testing"
	"time"
)

func TestStrftime(t *testing.T) {
	tm := time.Date(2026, time.March, 5, 7, 4, 9, 0, time.UTC)
	cases := []struct{ format, want string }{
		{"%d %b %Y", "05 Mar 2026"}, // Llama-3.2's
		{"%Y-%m-%d", "2026-03-05"},
		{"%-d %B %y", "5 March 26"},
		{"%A %a %j %e", "Thursday Thu 064  5"},
		{"%H:%M:%S %I %p %%", "07:04:09 07 AM %"},
		{"%q and a trailing %", "%q and a trailing %"},
	}
	for _, c := range cases {
		if got := strftime(tm, c.format); got != c.want {
			t.Errorf("strftime(%q) = %q, want %q", c.format, got, c.want)
		}
	}
}

// The template sees the vocabulary's special tokens, strftime_now on the clock, and ChatOptions.Vars over
// both (Python prints booleans as True/False).
func TestRenderChatGlobals(t *testing.T) {
	defer func(f func() time.Time) { chatNow = f }(chatNow)
	chatNow = func() time.Time { return time.Date(2026, time.December, 2, 12, 0, 0, 0, time.UTC) }
	tok := tinyByteLevel(t) // eos_token <|end|>, no BOS
	const tmpl = "[{{ bos_token is defined }}|{{ eos_token }}|{{ strftime_now('%d %b %Y') }}|{{ date_string | default('none') }}" +
		"|{{ tools is none }}]{% for m in messages %}{{ m.role }}={{ m['content'] | trim }}={{ m.content.strip() }};{{ m | tojson }}{% endfor %}{% if add_generation_prompt %}>{% endif %}"
	tok.SetChatTemplate(tmpl)
	cases := []struct {
		name string
		o    ChatOptions
		want string
	}{
		{"defaults", ChatOptions{}, `[False|<|end|>|02 Dec 2026|none|True]user=a b=a b;{"role": "user", "content": " a b\n"}`},
		{"generation prompt", ChatOptions{AddGenerationPrompt: true}, `[False|<|end|>|02 Dec 2026|none|True]user=a b=a b;{"role": "user", "content": " a b\n"}>`},
		{"vars", ChatOptions{Vars: map[string]any{"date_string": "26 Jul 2024", "eos_token": "</s>", "bos_token": "<s>"}},
			`[True|</s>|02 Dec 2026|26 Jul 2024|True]user=a b=a b;{"role": "user", "content": " a b\n"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tok.RenderChat([]Message{{"user", " a b\n"}}, c.o)
			if err != nil || got != c.want {
				t.Fatalf("RenderChat = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
