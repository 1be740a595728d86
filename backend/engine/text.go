package engine

import (
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
	"github.com/omnikv-triton/omnikv-triton/backend/tokenizer"
)

// TextStream turns generated tokens into text deltas: complete UTF-8 only, special tokens dropped, stop
// strings cut.
type TextStream struct {
	tok     *tokenizer.Tokenizer
	dec     *tokenizer.StreamDecoder
	stop    *sample.StopMatcher
	text    string // all text emitted
	tokens  int    // tokens consumed until a stop string completed
	stopped bool
}

func NewTextStream(tok *tokenizer.Tokenizer, stops []string) *TextStream {
	sm, _ := sample.NewStopMatcher(stops) // validated with the params
	return &TextStream{tok: tok, dec: tokenizer.NewStreamDecoder(tok), stop: sm}
}

// Add consumes one generated token and returns the text it completes, and whether a stop string completed
// (the stop string itself and everything after are never emitted).
func (s *TextStream) Add(id int32) (string, bool) {
	if s.stopped {
		return "", true
	}
	s.tokens++
	if s.tok.IsSpecial(id) {
		return "", false
	}
	delta, stopped := s.stop.Push(s.dec.Add(id))
	s.text += delta
	s.stopped = stopped
	return delta, stopped
}

// Flush returns the text held back at the end of generation.
func (s *TextStream) Flush() string {
	if s.stopped {
		return ""
	}
	delta, _ := s.stop.Push(s.dec.Flush())
	delta += s.stop.Flush()
	s.text += delta
	return delta
}

// Text returns all text emitted so far.
func (s *TextStream) Text() string { return s.text }

// Stopped reports whether a stop string completed.
func (s *TextStream) Stopped() bool { return s.stopped }

// Tokens returns the number of tokens consumed up to and including the one that completed a stop string.
func (s *TextStream) Tokens() int { return s.tokens }
