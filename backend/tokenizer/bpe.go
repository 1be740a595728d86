package tokenizer

import (
	"container/heap"
	"sync"
)

// merge is the result of merging an adjacent symbol pair: its priority (lower merges first) and new token id.
type merge struct {
	rank float64 // merge-list index (tokenizer.json, GGUF gpt2) or -score of the merged token (GGUF llama)
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// candidate is a pair waiting in the merge queue; it is stale when either side has changed since it was queued.
type candidate struct {
	rank        float64
	pos         int // index of the left symbol
	left, right int32
}

type mergeQueue []candidate

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(candidate)) }
func (q *mergeQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// lookupMerge returns the merge of the pair (a, b), if the vocabulary has one.
func (t *Tokenizer) lookupMerge(a, b int32) (merge, bool) {
	if t.scores == nil {
		m, ok := t.merges[pairKey(a, b)]
		return m, ok
	}
	// Score mode (SentencePiece GGUF vocab): a pair merges when the concatenation is a token; best score first.
	id, ok := t.vocab[t.tokens[a]+t.tokens[b]]
	if !ok || t.types != nil && t.types[id] == ggufTypeUnused {
		return merge{}, false
	}
	return merge{rank: -float64(t.scores[id]), id: id}, true
}

// bpe merges the symbols in place, lowest rank first and leftmost first among equals (Hugging Face's and
// llama.cpp's order), and returns the merged ids. A doubly linked list over the symbols and a heap of
// candidate pairs make it O(n log n) in the number of symbols.
func (t *Tokenizer) bpe(ids []int32) []int32 {
	n := len(ids)
	if n < 2 {
		return ids
	}
	prev := make([]int, n) // (n) index of previous live symbol or -1
	next := make([]int, n) // (n) index of next live symbol or -1
	for i := range ids {
		prev[i], next[i] = i-1, i+1
	}
	next[n-1] = -1
	q := make(mergeQueue, 0, n)
	for i := 0; i+1 < n; i++ {
		if m, ok := t.lookupMerge(ids[i], ids[i+1]); ok {
			q = append(q, candidate{m.rank, i, ids[i], ids[i+1]})
		}
	}
	heap.Init(&q)
	dead := make([]bool, n)
	for q.Len() > 0 {
		c := heap.Pop(&q).(candidate)
		r := next[c.pos]
		if dead[c.pos] || r < 0 || ids[c.pos] != c.left || ids[r] != c.right {
			continue
		}
		m, _ := t.lookupMerge(c.left, c.right)
		ids[c.pos] = m.id
		dead[r] = true
		next[c.pos] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = c.pos
		}
		if p := prev[c.pos]; p >= 0 {
			if m2, ok := t.lookupMerge(ids[p], ids[c.pos]); ok {
				heap.Push(&q, candidate{m2.rank, p, ids[p], ids[c.pos]})
			}
		}
		if nx := next[c.pos]; nx >= 0 {
			if m2, ok := t.lookupMerge(ids[c.pos], ids[nx]); ok {
				heap.Push(&q, candidate{m2.rank, c.pos, ids[c.pos], ids[nx]})
			}
		}
	}
	out := ids[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// wordCache remembers the ids of recent words; it is cleared when full rather than evicting one by one.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const (
	wordCacheMax    = 1 << 16 // entries
	wordCacheMaxLen = 256     // bytes: longer words are not cached
)

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	if len(w) > wordCacheMaxLen {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= wordCacheMax {
		c.m = make(map[string][]int32)
	}
	c.m[w] = append([]int32(nil), ids...)
	c.mu.Unlock()
}
