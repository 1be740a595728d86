package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// LogEvent is one zerolog event made readable for a host log (Triton's): the message, the other
// fields as key=value in key order, and the caller if the event carries one.
type LogEvent struct {
	Message string
	File    string // "" when the event has no caller field
	Line    int
}

// ParseLogEvent turns zerolog's JSON form of an event into a LogEvent. Input that is not a JSON
// object is passed through as the message.
func ParseLogEvent(p []byte) LogEvent {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return LogEvent{Message: strings.TrimSpace(string(p))}
	}
	var ev LogEvent
	if raw, ok := fields[zerolog.MessageFieldName]; ok {
		ev.Message = jsonText(raw)
	}
	if raw, ok := fields[zerolog.CallerFieldName]; ok {
		c := jsonText(raw)
		if i := strings.LastIndexByte(c, ':'); i > 0 {
			if n, err := strconv.Atoi(c[i+1:]); err == nil {
				ev.File, ev.Line = path.Base(c[:i]), n
			}
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case zerolog.MessageFieldName, zerolog.CallerFieldName, zerolog.LevelFieldName, zerolog.TimestampFieldName:
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(ev.Message)
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", k, jsonValue(fields[k]))
	}
	ev.Message = b.String()
	return ev
}

// jsonText returns a JSON string's text, or the raw JSON of any other value.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// jsonValue renders a field value: strings bare when they have no space or quote, else quoted.
func jsonValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}
