package sample

import (
	"math/rand/v2"
	"strings"
	"testing"
)

type step struct {
	delta   string
	emit    string
	stopped bool
}

func TestStopMatcher(t *testing.T) {
	tests := []struct {
		name  string
		stops []string
		steps []step
		flush string
	}{
		{"no stops", nil, []step{{"Hello", "Hello", false}, {" world", " world", false}}, ""},
		{"unrelated text passes", []string{"</s>"}, []step{{"abc", "abc", false}, {"def", "def", false}}, ""},
		{"in one delta", []string{"END"}, []step{{"fooENDbar", "foo", true}}, ""},
		{"at start", []string{"END"}, []step{{"END", "", true}}, ""},
		{"spanning three deltas", []string{"</s>"}, []step{{"a<", "a", false}, {"/", "", false}, {"s>b", "", true}}, ""},
		{"false start released", []string{"abc"}, []step{{"xab", "x", false}, {"d", "abd", false}}, ""},
		{"held then flushed", []string{"END"}, []step{{"abc E", "abc ", false}, {"N", "", false}}, "EN"},
		{"overlapping prefix aab", []string{"aab"}, []step{{"a", "", false}, {"a", "", false}, {"a", "a", false}, {"b", "", true}}, ""},
		{"overlapping prefix abab", []string{"abac"}, []step{{"ab", "", false}, {"ab", "ab", false}, {"ac!", "", true}}, ""},
		{"multiple stops first wins", []string{"\n\n", "END"}, []step{{"hello\n", "hello", false}, {"E", "\n", false}, {"ND\n\n", "", true}}, ""},
		{"earlier start wins over listed first", []string{"bc", "abcd"}, []step{{"xabcd", "x", true}}, ""},
		{"shorter completes first", []string{"abcd", "bc"}, []step{{"ab", "", false}, {"c", "a", true}}, ""},
		{"prefix of another stop", []string{"ab", "abc"}, []step{{"xa", "x", false}, {"bc", "", true}}, ""},
		{"after stop nothing", []string{"X"}, []step{{"aXb", "a", true}, {"more", "", true}}, ""},
		{"unicode stop across deltas", []string{"ß!"}, []step{{"Stra", "Stra", false}, {"ß", "", false}, {"e ß", "ße ", false}, {"!", "", true}}, ""},
		{"unicode text held by bytes", []string{"🛑"}, []step{{"ok\xf0\x9f", "ok", false}, {"\x9b", "", false}, {"\x91 rest", "", true}}, ""},
		{"unicode near miss", []string{"日本"}, []step{{"日", "", false}, {"日本語", "日", true}}, ""},
		{"cjk flushed", []string{"日本"}, []step{{"今日", "今", false}}, "日"},
		{"empty deltas", []string{"ab"}, []step{{"", "", false}, {"a", "", false}, {"", "", false}, {"b", "", true}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewStopMatcher(tc.stops)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				emit, stopped := m.Push(st.delta)
				if emit != st.emit || stopped != st.stopped {
					t.Fatalf("Push #%d(%q) = (%q, %v), want (%q, %v)", i, st.delta, emit, stopped, st.emit, st.stopped)
				}
			}
			if got := m.Flush(); got != tc.flush {
				t.Fatalf("Flush() = %q, want %q", got, tc.flush)
			}
		})
	}
}

func TestStopMatcherEmptyStop(t *testing.T) {
	if _, err := NewStopMatcher([]string{"a", ""}); err == nil || !strings.Contains(err.Error(), "stop[1]") {
		t.Fatalf("NewStopMatcher with an empty stop: err = %v, want one naming stop[1]", err)
	}
}

// TestStopMatcherRandom splits random texts into random deltas and checks that everything emitted
// plus the flush equals the text up to the first stop string (or all of it), and that no emitted
// text ever contains the start of a stop string that later completes.
func TestStopMatcherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	alphabet := []string{"a", "b", "c", "é", "\n"}
	stopSets := [][]string{{"ab"}, {"aab", "ba"}, {"cé", "\n\n"}, {"abcab"}, {"é\n", "b", "aaa"}}
	for trial := 0; trial < 2000; trial++ {
		stops := stopSets[trial%len(stopSets)]
		var sb strings.Builder
		for n := r.IntN(30); n > 0; n-- {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		text := sb.String()
		want, wantStop := text, false
		first := len(text)
		for _, s := range stops {
			if i := strings.Index(text, s); i >= 0 && i < first {
				first, wantStop = i, true
			}
		}
		want = text[:first]

		m, err := NewStopMatcher(stops)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		stopped := false
		for rest := text; rest != "" && !stopped; {
			n := 1 + r.IntN(min(len(rest), 6)) // byte splits: deltas may cut runes
			var e string
			e, stopped = m.Push(rest[:n])
			got.WriteString(e)
			if got.Len() > len(want) || !strings.HasPrefix(want, got.String()) {
				t.Fatalf("stops %q text %q: emitted %q, beyond the answer %q", stops, text, got.String(), want)
			}
			rest = rest[n:]
		}
		got.WriteString(m.Flush())
		if got.String() != want || stopped != wantStop {
			t.Fatalf("stops %q text %q: got (%q, %v), want (%q, %v)", stops, text, got.String(), stopped, want, wantStop)
		}
	}
}
