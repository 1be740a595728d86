package llama

import (
	"slices"

	"github.com/omnikv-triton/omnikv-triton/backend/kvcache"
)

// Sequence is one sequence of a model: its KV cache and, with OmniKV, its selection state on the device.
type Sequence struct {
	*kvcache.Sequence
	model *Model  // set with okv
	okv   *okvSeq // nil until the sequence first runs with OmniKV
}

// NewSequence returns an empty sequence on pool that may grow to maxTokens.
func NewSequence(pool *kvcache.Pool, maxTokens int) *Sequence {
	return &Sequence{Sequence: pool.NewSequence(maxTokens)}
}

// Release returns the sequence's pages and frees its selection state; the sequence is empty afterwards.
func (s *Sequence) Release() {
	s.Sequence.Release()
	if s.okv != nil {
		s.model.freeOKV(s.okv)
		s.okv = nil
	}
}

// ResetSelection forgets the OmniKV state (the next decode step starts a turn over every cached token),
// keeping the cache: benchmarks decode the same prompt in several modes.
func (s *Sequence) ResetSelection() {
	if s.okv != nil {
		s.model.freeOKV(s.okv)
		s.okv = nil
	}
}

// Selection returns the sequence's OmniKV traffic counters (zero when it never decoded with OmniKV): the
// rows fetched are read from the device.
func (s *Sequence) Selection() SelectionStats {
	if s.okv == nil {
		return SelectionStats{}
	}
	st := s.okv.stats
	m := s.model
	rowBytes := 2 * int64(m.KVDim()) * int64(s.Pool().Config().DType.Bytes())
	for _, state := range s.okv.states {
		if state == nil {
			continue
		}
		info := m.dev.ReadSel(state)
		st.RowsFetched += info.RowsFetched
		st.LastRows += info.LastFetched
		st.Selected, st.Candidates = len(info.Selected), info.Candidates
	}
	st.BytesFetched = st.RowsFetched * rowBytes
	return st
}

// Selected returns the indices the filter layer selected at the sequence's last decode step (nil if none).
func (s *Sequence) Selected(filterLayer int) []int32 {
	if s.okv == nil || filterLayer >= len(s.okv.states) || s.okv.states[filterLayer] == nil {
		return nil
	}
	return slices.Clone(s.model.dev.ReadSel(s.okv.states[filterLayer]).Selected)
}

// Fork returns a new sequence of capacity maxTokens that shares this one's first tokens positions (whole
// pages; see kvcache.Sequence.Fork), without its OmniKV state.
func (s *Sequence) Fork(tokens, maxTokens int) (*Sequence, error) {
	f, err := s.Sequence.Fork(tokens, maxTokens)
	if err != nil {
		return nil, err
	}
	return &Sequence{Sequence: f}, nil
}

// Idle readies a sequence to wait between turns: it keeps the cached tokens' pages and gives back the rest
// (pages reserved for a turn that ended early, the OmniKV staging and selection state).
func (s *Sequence) Idle() {
	s.ResetSelection()
	s.Sequence.Shrink()
}
