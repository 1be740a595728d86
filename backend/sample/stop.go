package sample

import (
	"fmt"
	"slices"
	"strings"
)

// StopMatcher finds stop strings in text that arrives in pieces (detokenised deltas). It holds back
// the end of the text while that end could still grow into a stop string, so that no text that turns
// out to be part of a stop string is ever emitted; when a stop string completes, it returns the text before it and reports the
// stop. Matching is on bytes: stop strings and deltas are UTF-8, and a stop string starts on a rune
// boundary, so emitted text splits valid UTF-8 only where the deltas themselves did.
//
// When several stop strings occur, the one starting first wins; the text before it is what is
// emitted.
type StopMatcher struct {
	stops   []string
	held    string // text received but not yet emitted: a suffix that is a prefix of some stop string
	stopped bool
}

// NewStopMatcher returns a matcher for stops; it fails if one is empty. With no stops, Push emits
// every delta at once.
func NewStopMatcher(stops []string) (*StopMatcher, error) {
	for i, s := range stops {
		if s == "" {
			return nil, fmt.Errorf("sample: stop[%d] must not be empty", i)
		}
	}
	return &StopMatcher{stops: slices.Clone(stops)}, nil
}

// Push takes the next delta and returns the text now safe to emit. When a stop string completes it
// returns the text before it and stopped=true; every later Push returns ("", true).
func (m *StopMatcher) Push(delta string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	text := delta
	if m.held != "" {
		text = m.held + delta
	}
	// A match not found before must end inside delta: search from where such a match could start.
	from := len(m.held)
	for _, s := range m.stops {
		from = min(from, max(0, len(m.held)-len(s)+1))
	}
	cut, found := len(text), false
	for _, s := range m.stops {
		i := strings.Index(text[from:], s)
		if i >= 0 && from+i < cut {
			cut, found = from+i, true
		}
	}
	if found {
		m.stopped, m.held = true, ""
		return text[:cut], true
	}
	keep := m.partial(text)
	m.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// partial returns the length of the longest suffix of text that is a proper prefix of a stop string.
func (m *StopMatcher) partial(text string) int {
	best := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(text)); n > best; n-- {
			if strings.HasSuffix(text, s[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// Flush returns the text held back, at the end of generation (stopped or not, nothing follows).
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}

// Stopped reports whether a stop string has been seen.
func (m *StopMatcher) Stopped() bool { return m.stopped }
