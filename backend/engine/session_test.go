package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/omnikv"
)

// turnIDs runs one raw session turn and returns its answer.
func turnIDs(t *testing.T, e *Engine, id string, start bool, ids []int32, n int) ([]int32, Event) {
	t.Helper()
	h, err := e.Generate(context.Background(), GenRequest{Session: id, Start: start, IDs: ids, Params: greedyParams(n)})
	if err != nil {
		t.Fatalf("session %s: %v", id, err)
	}
	return collect(t, h)
}

// A new session beyond MaxSessions is refused at once with KindUnavailable; ending one makes room.
func TestSessionLimitRefusesAtOnce(t *testing.T) {
	e, err := New(tinyModel(t, false), Options{MaxSessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	turnIDs(t, e, "a", true, []int32{1, 2}, 2)
	turnIDs(t, e, "b", true, []int32{1, 3}, 2)
	t0 := time.Now()
	_, err = e.Generate(context.Background(), GenRequest{Session: "c", Start: true, IDs: []int32{1}, Params: greedyParams(2)})
	if KindOf(err) != KindUnavailable || !strings.Contains(err.Error(), "session limit reached: 2 chat sessions are open (max_sessions 2)") {
		t.Fatalf("third session: %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("the refusal took %v", d)
	}
	if err := e.CheckSession("c", true); KindOf(err) != KindUnavailable {
		t.Fatalf("CheckSession: %v", err)
	}
	if err := e.EndSession("a"); err != nil {
		t.Fatal(err)
	}
	turnIDs(t, e, "c", true, []int32{1, 4}, 2)
	if _, err := e.Generate(context.Background(), GenRequest{Session: "a", IDs: []int32{5}, Params: greedyParams(2)}); KindOf(err) != KindNotFound {
		t.Fatalf("turn on an ended session: %v", err)
	}
}

// With room for one session's KV, a second session evicts the first (oldest idle first); the first's next
// turn re-prefills its conversation and answers as if nothing had happened.
func TestEvictedSessionReprefills(t *testing.T) {
	m := tinyModel(t, false)
	ref, err := New(m, Options{PageSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	e, err := New(m, Options{PageSize: 16, MaxKVPages: 16, QueueTimeout: time.Second}) // 4 layers x 4 pages: 64 tokens
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	turns := [][]int32{{1, 20, 30}, {40, 50}, {60}}
	var want [][]int32
	for i, turn := range turns {
		out, fin := turnIDs(t, ref, "a", i == 0, turn, 10)
		if fin.Err != nil {
			t.Fatal(fin.Err)
		}
		want = append(want, out)
	}
	for i, turn := range turns {
		out, fin := turnIDs(t, e, "a", i == 0, turn, 10)
		if fin.Err != nil || !slices.Equal(out, want[i]) {
			t.Fatalf("turn %d: %v %v, want %v", i, out, fin.Err, want[i])
		}
		// Another session fills the budget: a's KV must go.
		if _, fin := turnIDs(t, e, "b", true, []int32{1, 7, 8, 9}, 30); fin.Err != nil {
			t.Fatalf("session b, turn %d: %v", i, fin.Err)
		}
		if i == 0 && fin.Stats.PrefillTokens != 3 {
			t.Fatalf("first turn prefilled %d tokens", fin.Stats.PrefillTokens)
		}
	}
	if _, fin := turnIDs(t, e, "a", false, []int32{70}, 4); fin.Err != nil || fin.Stats.PrefillTokens != fin.Stats.PromptTokens {
		t.Fatalf("after eviction the whole conversation is prefilled: %+v %v", fin.Stats, fin.Err)
	}
}

// A request that cannot fit while others hold the memory waits QueueTimeout, then is refused naming the
// wait; one bigger than the whole budget is refused at once.
func TestQueueTimeoutRefuses(t *testing.T) {
	e, err := New(tinyModel(t, false), Options{PageSize: 16, MaxKVPages: 16, QueueTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.onStep = func([]llama.Step) { time.Sleep(10 * time.Millisecond) } // the first request runs ~600 ms
	hold, err := e.Submit(context.Background(), Request{Prompt: []int32{1, 2}, Params: greedyParams(60)})
	if err != nil {
		t.Fatal(err)
	}
	<-hold.Events() // running: it holds the whole budget
	t0 := time.Now()
	h, err := e.Submit(context.Background(), Request{Prompt: []int32{1, 3}, Params: greedyParams(60)})
	if err != nil {
		t.Fatal(err)
	}
	_, fin := collect(t, h)
	if KindOf(fin.Err) != KindUnavailable || !strings.Contains(fin.Err.Error(), "after waiting 300ms (queue_timeout_s)") {
		t.Fatalf("second request: %v", fin.Err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("refused after %v, before the queue timeout", d)
	}
	hold.Cancel()
	collect(t, hold)
	t0 = time.Now()
	h, err = e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(100)})
	if err != nil {
		t.Fatal(err)
	}
	if _, fin := collect(t, h); KindOf(fin.Err) != KindUnavailable || !strings.Contains(fin.Err.Error(), "more KV memory than the whole budget") || time.Since(t0) > 200*time.Millisecond {
		t.Fatalf("oversized request: %v after %v", fin.Err, time.Since(t0))
	}
}

// Review findings: a failed start leaves no session behind; an idle session holds only its tokens' pages;
// a request bigger than the whole budget evicts nobody; empty ids are refused.
func TestSessionEdges(t *testing.T) {
	e, err := New(tinyModel(t, false), Options{MaxSessions: 1, PageSize: 16, MaxKVPages: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Generate(context.Background(), GenRequest{Session: "a", Start: true, IDs: []int32{1}, Params: greedyParams(1000)}); KindOf(err) != KindInvalid {
		t.Fatalf("start over the context: %v", err)
	}
	if n := e.Sessions(); n != 0 {
		t.Fatalf("a failed start left %d sessions", n)
	}
	h, err := e.Generate(context.Background(), GenRequest{Session: "b", Start: true, IDs: []int32{1, 2, 3}, Params: greedyParams(60)})
	if err != nil {
		t.Fatal(err)
	}
	<-h.Events()
	h.Cancel()
	for range h.Events() {
	}
	// 4 layers, the tokens the cache holds fit in one 16-token page each.
	if n := e.KVPagesInUse(); n != 4 {
		t.Fatalf("idle session holds %d layer pages, want 4", n)
	}
	h, err = e.Submit(context.Background(), Request{Prompt: []int32{1}, Params: greedyParams(200)})
	if err != nil {
		t.Fatal(err)
	}
	if _, fin := collect(t, h); KindOf(fin.Err) != KindUnavailable || e.KVPagesInUse() != 4 {
		t.Fatalf("oversized request: %v; session pages after it %d (evicted?)", fin.Err, e.KVPagesInUse())
	}
	if _, err := e.Generate(context.Background(), GenRequest{Session: "b", IDs: []int32{}, Params: greedyParams(2)}); KindOf(err) != KindInvalid {
		t.Fatalf("empty ids: %v", err)
	}
}

// With a windowed selector (its scores use the last Window queries), a session turn selects as a stateless
// request over the same context does, although the turn prefills only what its cache lacks; so do the forks
// of n > 1.
func TestWindowedSelectorSessionsEqualStateless(t *testing.T) {
	m := tinyModel(t, false)
	cfg := omnikv.Config{Enabled: true, FilterLayers: []int{1}, Selector: omnikv.Uniform, Window: 4, Budget: omnikv.Budget{Tokens: 6}}
	if err := m.SetOmniKV(cfg); err != nil {
		t.Fatal(err)
	}
	e, err := New(m, Options{PageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	turns := [][]int32{{1, 20, 30, 40, 41, 42, 43, 44, 45}, {50, 60}, {70}}
	var conv, last []int32
	for i, turn := range turns {
		out, fin := turnIDs(t, e, "w", i == 0, turn, 6)
		if fin.Err != nil {
			t.Fatal(fin.Err)
		}
		conv = append(append(conv, turn...), out...)
		last = out
		if fin.Stats.PrefillTokens < cfg.Window {
			t.Fatalf("turn %d prefilled %d tokens, fewer than the window of %d", i, fin.Stats.PrefillTokens, cfg.Window)
		}
	}
	h, err := e.Generate(context.Background(), GenRequest{IDs: conv[:len(conv)-len(last)], Params: greedyParams(6)})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := collect(t, h); !slices.Equal(last, want) {
		t.Fatalf("turn 3 %v, stateless over the conversation %v", last, want)
	}
}
