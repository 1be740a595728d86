package serve

import (
	"bytes"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseLogEvent(t *testing.T) {
	tests := []struct {
		name string
		emit func(l zerolog.Logger)
		want LogEvent
	}{
		{"message only", func(l zerolog.Logger) { l.Info().Msg("model loaded") }, LogEvent{Message: "model loaded"}},
		{"fields sorted", func(l zerolog.Logger) {
			l.Warn().Str("model", "m1").Int("tokens", 42).Bool("ok", true).Msg("slow")
		}, LogEvent{Message: "slow model=m1 ok=true tokens=42"}},
		{"quoted string", func(l zerolog.Logger) { l.Info().Str("text", "two words").Msg("") }, LogEvent{Message: `text="two words"`}},
		{"error field", func(l zerolog.Logger) { l.Error().Err(errTest).Msg("failed") }, LogEvent{Message: `failed error="bad thing"`}},
		{"caller", func(l zerolog.Logger) { l.Info().Caller(0).Msg("here") }, LogEvent{Message: "here", File: "log_test.go"}},
		{"timestamp dropped", func(l zerolog.Logger) { lt := l.With().Timestamp().Logger(); lt.Info().Msg("t") }, LogEvent{Message: "t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.emit(zerolog.New(&buf))
			got := ParseLogEvent(buf.Bytes())
			if got.Message != tc.want.Message || got.File != tc.want.File {
				t.Errorf("got %+v, want %+v (event %s)", got, tc.want, buf.Bytes())
			}
			if tc.want.File != "" && got.Line <= 0 {
				t.Errorf("caller line %d, want > 0", got.Line)
			}
		})
	}
	if got := ParseLogEvent([]byte("not json\n")); got.Message != "not json" {
		t.Errorf("non-JSON input: got %+v", got)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

var errTest = testErr("bad thing")
