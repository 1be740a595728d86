package tokenizer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ardanlabs/jinja"
)

// Message is one chat turn.
type Message struct {
	Role    string // "system", "user", "assistant", ...
	Content string
}

// ChatOptions are the settings of one rendering of the chat template.
type ChatOptions struct {
	// AddGenerationPrompt appends what opens the assistant's turn (the template's add_generation_prompt).
	AddGenerationPrompt bool
	// Vars are further template variables, as keyword arguments of Hugging Face's apply_chat_template
	// (e.g. "date_string", "tools"); they override the variables RenderChat sets.
	Vars map[string]any
}

// chatCache holds a template compiled once, on first use (a template that does not parse is reported by
// every rendering, not when the model loads: a model without a usable template still serves raw text).
type chatCache struct {
	src  string
	once sync.Once
	tmpl *jinja.Template
	err  error
}

func (c *chatCache) compiled() (*jinja.Template, error) {
	c.once.Do(func() {
		c.tmpl, c.err = jinja.Compile(c.src)
		if c.err != nil {
			c.err = fmt.Errorf("chat template: does not parse: %w%s", c.err, where(c.src, c.err))
		}
	})
	return c.tmpl, c.err
}

// ChatTemplate is the jinja chat template the model ships ("" when none).
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// HasChatTemplate reports whether the model carries a chat template.
func (t *Tokenizer) HasChatTemplate() bool { return t.chatTemplate != "" }

// SetChatTemplate replaces the chat template (e.g. one read from a separate chat_template.jinja). Not safe
// while other goroutines render with t.
func (t *Tokenizer) SetChatTemplate(s string) {
	t.chatTemplate = s
	t.chat = &chatCache{src: s}
}

// ApplyChat renders msgs with the model's jinja chat template as Hugging Face's
// apply_chat_template(msgs, tokenize=False, add_generation_prompt=addGenerationPrompt) renders them.
func (t *Tokenizer) ApplyChat(msgs []Message, addGenerationPrompt bool) (string, error) {
	return t.RenderChat(msgs, ChatOptions{AddGenerationPrompt: addGenerationPrompt})
}

// RenderChat renders msgs with the model's chat template. The template sees what transformers gives it:
// messages (a list of {role, content}), add_generation_prompt, tools (none), the vocabulary's special
// tokens (bos_token, eos_token, unk_token, pad_token, where the model has them), raise_exception (an error
// carrying the template's message) and strftime_now, then o.Vars. Errors start "chat template: " and name
// the template line where it can be told, e.g. "chat template: <message> (raise_exception at line N)".
func (t *Tokenizer) RenderChat(msgs []Message, o ChatOptions) (string, error) {
	c := t.chat
	if c == nil || c.src != t.chatTemplate { // a Tokenizer built without SetChatTemplate
		c = &chatCache{src: t.chatTemplate}
	}
	if c.src == "" {
		return "", fmt.Errorf("chat template: the model has none")
	}
	tmpl, err := c.compiled()
	if err != nil {
		return "", err
	}
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs { // a dict keeps its keys in order: role, then content, as Python's
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	vars := map[string]any{
		"add_generation_prompt": o.AddGenerationPrompt,
		"tools":                 nil,
		"documents":             nil,
	}
	for name, id := range map[string]int32{"bos_token": t.bos, "eos_token": t.eos, "unk_token": t.unk, "pad_token": t.pad} {
		if s := t.TokenString(id); s != "" {
			vars[name] = s
		}
	}
	data := make(map[string]jinja.Value, len(vars)+len(o.Vars)+2)
	for k, v := range vars {
		data[k] = jinja.FromGoValue(v)
	}
	data["messages"] = jinja.NewList(list)
	data["raise_exception"] = jinja.NewCallable("raise_exception", raiseException)
	data["strftime_now"] = jinja.NewCallable("strftime_now", strftimeNow)
	for k, v := range o.Vars {
		data[k] = jinja.FromGoValue(v)
	}
	out, err := tmpl.RenderValues(data)
	if err != nil {
		var r *raised
		if errors.As(err, &r) {
			if n := lineOf(c.src, r.msg); n > 0 {
				return "", fmt.Errorf("chat template: %s (raise_exception at line %d)", r.msg, n)
			}
			return "", fmt.Errorf("chat template: %s (raise_exception)", r.msg)
		}
		return "", fmt.Errorf("chat template: %w%s", err, where(c.src, err))
	}
	return out, nil
}

var (
	unclosedRe = regexp.MustCompile(`^(?:jinja parse: )?unclosed (if|for|macro|call|filter|raw) block$`)
	blockRe    = regexp.MustCompile(`\{%-?\s*(end)?(if|for|macro|call|filter|raw)\b`)
	quotedRe   = regexp.MustCompile(`"([^"\s]{2,})"`)
)

// where says where in src the error err (which names no line) lies, when that can be told: the opening tag
// of a block left unclosed, or the first line that spells a name the error quotes (an unknown filter or
// test); "" otherwise, or when err already names its line.
func where(src string, err error) string {
	msg := err.Error()
	if strings.Contains(msg, "line ") {
		return ""
	}
	if m := unclosedRe.FindStringSubmatch(msg); m != nil {
		var open []int // offsets of the unclosed opening tags of kind m[1]
		for _, t := range blockRe.FindAllStringSubmatchIndex(src, -1) {
			if src[t[4]:t[5]] != m[1] {
				continue
			}
			if t[2] < 0 {
				open = append(open, t[0])
			} else if len(open) > 0 {
				open = open[:len(open)-1]
			}
		}
		if len(open) > 0 {
			return fmt.Sprintf(" (the %s opened at line %d)", m[1], strings.Count(src[:open[0]], "\n")+1)
		}
		return ""
	}
	if m := quotedRe.FindStringSubmatch(msg); m != nil {
		if n := lineOf(src, m[1]); n > 0 {
			return fmt.Sprintf(" (at line %d)", n)
		}
	}
	return ""
}

// raised is the error of the template's raise_exception(message).
type raised struct{ msg string }

func (r *raised) Error() string { return r.msg }

func raiseException(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), &raised{msg: "raise_exception called without a message"}
	}
	if args[0].IsString() {
		return jinja.Undefined(), &raised{msg: args[0].AsString()}
	}
	return jinja.Undefined(), &raised{msg: args[0].String()}
}

// lineOf returns the 1-based line of the first occurrence of s in src, or 0.
func lineOf(src, s string) int {
	i := strings.Index(src, s)
	if i < 0 || s == "" {
		return 0
	}
	return strings.Count(src[:i], "\n") + 1
}

// chatNow is the clock of strftime_now (tests replace it).
var chatNow = time.Now

// strftimeNow is transformers' strftime_now(format): the local time formatted with Python's strftime codes
// (%d %m %Y %y %H %M %S %I %p %b %B %a %A %j %e %Z %%, and %-d style unpadded forms).
func strftimeNow(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) != 1 || !args[0].IsString() {
		return jinja.Undefined(), fmt.Errorf("strftime_now: want one format string")
	}
	return jinja.NewString(strftime(chatNow(), args[0].AsString())), nil
}

func strftime(tm time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			sb.WriteByte(format[i])
			continue
		}
		i++
		unpadded := format[i] == '-' && i+1 < len(format)
		if unpadded {
			i++
		}
		num := func(v, width int) {
			if unpadded {
				fmt.Fprintf(&sb, "%d", v)
			} else {
				fmt.Fprintf(&sb, "%0*d", width, v)
			}
		}
		switch format[i] {
		case 'd':
			num(tm.Day(), 2)
		case 'e':
			fmt.Fprintf(&sb, "%2d", tm.Day())
		case 'm':
			num(int(tm.Month()), 2)
		case 'Y':
			num(tm.Year(), 4)
		case 'y':
			num(tm.Year()%100, 2)
		case 'H':
			num(tm.Hour(), 2)
		case 'I':
			num((tm.Hour()+11)%12+1, 2)
		case 'M':
			num(tm.Minute(), 2)
		case 'S':
			num(tm.Second(), 2)
		case 'j':
			num(tm.YearDay(), 3)
		case 'p':
			sb.WriteString(tm.Format("PM"))
		case 'b':
			sb.WriteString(tm.Format("Jan"))
		case 'B':
			sb.WriteString(tm.Format("January"))
		case 'a':
			sb.WriteString(tm.Format("Mon"))
		case 'A':
			sb.WriteString(tm.Format("Monday"))
		case 'Z':
			sb.WriteString(tm.Format("MST"))
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			if unpadded {
				sb.WriteByte('-')
			}
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
