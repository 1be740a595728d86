package tokenizer

import (
	"strings"
	"testing"
)

// A conversation rendered whole equals its first turn, the answer with its end-of-turn token, and the
// continuation: what a chat session feeds turn by turn.
func TestContinueChatMatchesWholeConversation(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, eot string }{
		{"chatml", "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", "<|im_end|>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := &Tokenizer{}
			tok.SetChatTemplate(tc.tmpl)
			u1, a1, u2 := Message{"user", "Hi"}, Message{"assistant", "Hello!"}, Message{"user", "Bye"}
			whole, err := tok.ApplyChat([]Message{u1, a1, u2}, true)
			if err != nil {
				t.Fatal(err)
			}
			first, err := tok.ApplyChat([]Message{u1}, true)
			if err != nil {
				t.Fatal(err)
			}
			next, err := tok.ContinueChat([]Message{u2}, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := first + a1.Content + tc.eot + next; got != whole {
				t.Fatalf("turn by turn:\n%q\nwhole:\n%q", got, whole)
			}
			if !strings.HasSuffix(next, "<|im_start|>assistant\n") {
				t.Fatalf("no generation prompt: %q", next)
			}
		})
	}
}
