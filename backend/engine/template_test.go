package engine

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// Which prompt a request becomes: the chat template by default, the request's Template over the engine's
// ChatTemplate, messages always templated, token ids never; a model without a template serves text as it is
// and refuses messages.
func TestTemplatedPrompts(t *testing.T) {
	e := smolEngine(t, false, Options{})
	tok := e.tok
	wrap := func(msgs ...tokenizer.Message) []int32 {
		text, err := tok.ApplyChat(msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.Encode(text, false)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	plain, err := tok.Encode("What is 2+2?", true)
	if err != nil {
		t.Fatal(err)
	}
	user := tokenizer.Message{Role: "user", Content: "What is 2+2?"}
	templated := wrap(user)
	off, on := false, true
	conv := []tokenizer.Message{{Role: "system", Content: "Be brief."}, user, {Role: "assistant", Content: "4"}, {Role: "user", Content: "And 3+3?"}}
	cases := []struct {
		name        string
		chat, strip bool // the engine's ChatTemplate; the model's template removed
		req         GenRequest
		want        []int32
	}{
		{"text, template on", true, false, GenRequest{Text: user.Content}, templated},
		{"text, template off", false, false, GenRequest{Text: user.Content}, plain},
		{"text, request off", true, false, GenRequest{Text: user.Content, Template: &off}, plain},
		{"text, request on", false, false, GenRequest{Text: user.Content, Template: &on}, templated},
		{"messages", false, false, GenRequest{Messages: conv}, wrap(conv...)},
		{"ids", true, false, GenRequest{IDs: []int32{1, 2, 3}}, []int32{1, 2, 3}},
		{"text, no template in the model", true, true, GenRequest{Text: user.Content}, plain},
	}
	saved := tok.ChatTemplate()
	defer tok.SetChatTemplate(saved)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.opt.ChatTemplate = c.chat
			tok.SetChatTemplate(saved)
			if c.strip {
				tok.SetChatTemplate("")
			}
			got, err := e.statelessPrompt(c.req)
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("prompt %v, %v; want %v", got, err, c.want)
			}
		})
	}
	tok.SetChatTemplate("")
	_, err = e.Generate(context.Background(), GenRequest{Messages: conv, Params: greedyParams(4)})
	if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "no chat template") {
		t.Fatalf("messages without a template: %v", err)
	}
	tok.SetChatTemplate("{{ raise_exception('no way') }}")
	_, err = e.Generate(context.Background(), GenRequest{Text: "hi", Template: &on, Params: greedyParams(4)})
	if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "chat template: no way (raise_exception at line 1)") {
		t.Fatalf("a template that raises: %v", err)
	}
	for _, bad := range []GenRequest{{Text: "a", Messages: conv}, {IDs: []int32{1}, Messages: conv}, {}} {
		if _, err := e.Generate(context.Background(), bad); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "exactly one") {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}
