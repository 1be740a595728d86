package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
)

// Message is one chat turn.
type Message struct {
	Role    string // "system", "user", "assistant", ...
	Content string
}

// chatStyle is a chat template family recognised from the template text.
type chatStyle int

const (
	chatUnknown chatStyle = iota
	chatML                // <|im_start|>role\ncontent<|im_end|>\n (SmolLM2)
	chatLlama3            // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
)

// recogniseChat identifies the template and, for ChatML, the default system prompt it inserts when the first
// message is not a system message ("" when it inserts none).
func recogniseChat(tmpl string) (chatStyle, string) {
	switch {
	case strings.Contains(tmpl, "<|im_start|>") && strings.Contains(tmpl, "<|im_end|>"):
		sys := ""
		if strings.Contains(tmpl, "messages[0]['role'] != 'system'") {
			const open = "<|im_start|>system"
			if i := strings.Index(tmpl, open); i >= 0 {
				rest := tmpl[i+len(open):]
				rest = strings.TrimPrefix(strings.TrimPrefix(rest, "\n"), `\n`)
				if j := strings.Index(rest, "<|im_end|>"); j >= 0 && !strings.ContainsAny(rest[:j], "'\"{}") {
					sys = rest[:j]
				}
			}
		}
		return chatML, sys
	case strings.Contains(tmpl, "<|start_header_id|>") && strings.Contains(tmpl, "<|eot_id|>") &&
		strings.Contains(tmpl, "message['content'] | trim") && !strings.Contains(tmpl, "Cutting Knowledge"):
		return chatLlama3, ""
	}
	return chatUnknown, ""
}

// ApplyChat renders messages with the model's chat template, as its jinja template renders them: ChatML
// (SmolLM2, which inserts its default system prompt when the first message is not a system message) or
// Llama-3 (BOS first, each content trimmed). The template is recognised by its text; any other template is an
// error. addGenerationPrompt appends the header that opens the assistant's turn.
func (t *Tokenizer) ApplyChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if t.chatTemplate == "" {
		return "", fmt.Errorf("tokenizer: apply chat: the model has no chat template")
	}
	style, sys := recogniseChat(t.chatTemplate)
	var sb strings.Builder
	switch style {
	case chatML:
		if len(msgs) > 0 && sys != "" && msgs[0].Role != "system" {
			sb.WriteString("<|im_start|>system\n" + sys + "<|im_end|>\n")
		}
	case chatLlama3:
		if len(msgs) > 0 {
			sb.WriteString(t.TokenString(t.bos))
		}
	}
	switch style {
	case chatML, chatLlama3:
		t.renderTurns(&sb, style, msgs, addGenerationPrompt)
	default:
		head := t.chatTemplate
		if len(head) > 60 {
			head = head[:60] + "..."
		}
		return "", fmt.Errorf("tokenizer: apply chat: unrecognised chat template %q (supported: ChatML as SmolLM2, Llama-3)", head)
	}
	return sb.String(), nil
}

// pyStrip is Python's str.strip() (jinja's trim filter): Unicode whitespace plus the separators \x1c-\x1f.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f })
}

// ContinueChat renders the text that follows an assistant answer ended by the model's end-of-turn token,
// for a conversation that goes on with msgs: what ApplyChat would render after that point, for sessions
// whose earlier turns are already in the KV cache. (ChatML: the newline after <|im_end|>, then each message;
// Llama-3: each message.)
func (t *Tokenizer) ContinueChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	if t.chatTemplate == "" {
		return "", fmt.Errorf("tokenizer: continue chat: the model has no chat template")
	}
	style, _ := recogniseChat(t.chatTemplate)
	var sb strings.Builder
	switch style {
	case chatML:
		sb.WriteString("\n") // after the <|im_end|> that ended the answer
		t.renderTurns(&sb, style, msgs, addGenerationPrompt)
	case chatLlama3:
		t.renderTurns(&sb, style, msgs, addGenerationPrompt)
	default:
		return t.ApplyChat(msgs, addGenerationPrompt) // reports the unrecognised template
	}
	return sb.String(), nil
}

// renderTurns writes each message in the template's turn format, then the assistant header when asked (or,
// for Llama-3 templates without add_generation_prompt, always).
func (t *Tokenizer) renderTurns(sb *strings.Builder, style chatStyle, msgs []Message, addGenerationPrompt bool) {
	switch style {
	case chatML:
		for _, m := range msgs {
			sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
		if addGenerationPrompt {
			sb.WriteString("<|im_start|>assistant\n")
		}
	case chatLlama3:
		for _, m := range msgs {
			sb.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + pyStrip(m.Content) + "<|eot_id|>")
		}
		// Some Llama-3 templates always open the assistant turn; the official one asks add_generation_prompt.
		if addGenerationPrompt || !strings.Contains(t.chatTemplate, "add_generation_prompt") {
			sb.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	}
}
