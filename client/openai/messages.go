package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// chatMessage is one message of the model's messages input.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// parseMessages reads the chat messages into the messages input's JSON: text content only (a
// string, or text parts joined with newlines), roles system, developer (sent as system), user and
// assistant.
func parseMessages(f fields) (string, *Error) {
	var raw []map[string]json.RawMessage
	if ok, err := f.get("messages", &raw, "a list of message objects"); err != nil {
		return "", err
	} else if !ok || len(raw) == 0 {
		return "", invalid("messages", "messages is required and must hold at least one message")
	}
	out := make([]chatMessage, len(raw))
	for i, m := range raw {
		at := fmt.Sprintf("messages[%d]", i)
		if m == nil {
			return "", invalid(at, "%s must be an object", at)
		}
		var role string
		if err := json.Unmarshal(m["role"], &role); err != nil {
			return "", invalid(at+".role", "%s.role must be a string, got %s", at, m["role"])
		}
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		case "tool", "function":
			return "", unsupported(at+".role", "%s: role %q is not supported: this server has no tool calling", at, role)
		default:
			return "", invalid(at+".role", "%s.role %q is not one of system, developer, user, assistant", at, role)
		}
		for k, v := range m {
			switch k {
			case "role", "content", "name", "refusal":
			case "tool_calls", "function_call", "audio":
				if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) && string(v) != "[]" {
					return "", unsupported(at+"."+k, "%s.%s is not supported: this server has no tool calling or audio", at, k)
				}
			default:
				return "", invalid(at+"."+k, "Unrecognized message field: %s.%s", at, k)
			}
		}
		text, err := messageText(at, m["content"])
		if err != nil {
			return "", err
		}
		out[i] = chatMessage{Role: role, Content: text}
	}
	js, err := json.Marshal(out)
	if err != nil {
		return "", &Error{Status: 500, Type: "server_error", Message: fmt.Sprintf("messages: %v", err)}
	}
	return string(js), nil
}

// messageText reads a message's content: a string, or a list of {"type": "text", "text": ...}.
func messageText(at string, raw json.RawMessage) (string, *Error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(at+".content", "%s.content must be a string or a list of text parts, got %s", at, orNull(raw))
	}
	texts := make([]string, len(parts))
	for j, part := range parts {
		if part.Type != "text" {
			return "", unsupported(fmt.Sprintf("%s.content[%d].type", at, j), "%s.content[%d]: content of type %q is not supported (text only: this model reads no images, audio or files)", at, j, part.Type)
		}
		if part.Text == nil {
			return "", invalid(fmt.Sprintf("%s.content[%d].text", at, j), "%s.content[%d].text is missing", at, j)
		}
		texts[j] = *part.Text
	}
	return strings.Join(texts, "\n"), nil
}

func orNull(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return string(raw)
}
