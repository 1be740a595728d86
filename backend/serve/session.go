package serve

import (
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/llama"
	"github.com/omnikv-triton/omnikv-triton/backend/sample"
)

// session is one chat conversation (a Triton sequence): its KV cache and the tokens not yet in it.
type session struct {
	key     string
	seq     *llama.Sequence
	conv    int     // tokens in the conversation so far (cached + pending)
	pending []int32 // generated tokens not yet in the cache (the last answer's last token)
	busy    bool    // a turn is running
	broken  bool    // a turn failed midway: the cache no longer matches the conversation
	last    time.Time
}

// finishTurn records the turn's answer: the cache keeps what it holds of the conversation, the rest waits
// for the next turn.
func (s *session) finishTurn(answer []int32, _ sample.FinishReason) {
	// The turn fed its prompt and all but (usually) the last generated token; a stop string may have cut the
	// answer shorter than what was fed.
	s.conv += len(answer)
	cached := s.seq.Len()
	switch {
	case cached > s.conv:
		s.seq.Truncate(s.conv)
		s.pending = nil
	default:
		s.pending = append(s.pending[:0], answer[len(answer)-(s.conv-cached):]...)
	}
}

// sessions is a model instance's session table with its own idle reaper (Triton's sequence idle timeout
// does not tell the backend).
type sessions struct {
	eng  *engine.Engine
	idle time.Duration
	log  zerolog.Logger

	mu   sync.Mutex
	m    map[string]*session
	stop chan struct{}
	done chan struct{}
}

func newSessions(eng *engine.Engine, idle time.Duration, log zerolog.Logger) *sessions {
	s := &sessions{eng: eng, idle: idle, log: log, m: map[string]*session{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.reap()
	return s
}

// key returns the session key of a request's correlation id.
func sessionKey(req *Request) (string, error) {
	switch {
	case req.CorrelationIDString != "":
		return "s:" + req.CorrelationIDString, nil
	case req.CorrelationID != 0:
		return fmt.Sprintf("n:%d", req.CorrelationID), nil
	}
	return "", Errorf(CodeInvalidArg, "this model keeps chat sessions: the request needs a sequence_id")
}

// check verifies that a turn names a session that exists (or starts one).
func (s *sessions) check(req *Request) error {
	key, err := sessionKey(req)
	if err != nil {
		return err
	}
	if req.SequenceStart {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		return Errorf(CodeNotFound, "sequence %s: unknown or expired session (start it with sequence_start)", key[2:])
	}
	return nil
}

// begin takes the session of a turn, creating it on sequence_start.
func (s *sessions) begin(req *Request) (*session, error) {
	key, err := sessionKey(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[key]
	if req.SequenceStart {
		if ok && ss.busy {
			return nil, Errorf(CodeAlreadyExists, "sequence %s: a turn is still running", key[2:])
		}
		if ok {
			ss.seq.Release()
		}
		ss = &session{key: key, seq: s.eng.NewSequence()}
		s.m[key] = ss
	}
	switch {
	case ss == nil:
		return nil, Errorf(CodeNotFound, "sequence %s: unknown or expired session (start it with sequence_start)", key[2:])
	case ss.busy:
		return nil, Errorf(CodeAlreadyExists, "sequence %s: a turn is still running", key[2:])
	case ss.broken:
		return nil, Errorf(CodeUnavailable, "sequence %s: an earlier turn failed; start a new session", key[2:])
	}
	ss.busy, ss.last = true, time.Now()
	return ss, nil
}

// prompt is called by the generator once it knows the turn's prompt length (the pending tokens included).
func (ss *session) addPrompt(n int) { ss.conv += n }

// end releases the turn; on sequence_end the session and its memory go.
func (s *sessions) end(ss *session, last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.busy, ss.last = false, time.Now()
	if last {
		ss.seq.Release()
		delete(s.m, ss.key)
	}
}

// reap frees sessions idle longer than the timeout.
func (s *sessions) reap() {
	defer close(s.done)
	t := time.NewTicker(min(time.Second, s.idle/4+time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			for k, ss := range s.m {
				if !ss.busy && now.Sub(ss.last) > s.idle {
					ss.seq.Release()
					delete(s.m, k)
					s.log.Info().Str("sequence", k[2:]).Msg("session expired: KV freed")
				}
			}
			s.mu.Unlock()
		}
	}
}

// close stops the reaper and frees every session.
func (s *sessions) close() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.m {
		ss.seq.Release()
		delete(s.m, k)
	}
}

// count returns the number of live sessions.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// pages counts the KV pages held by sessions that are not running a turn.
func (s *sessions) pages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ss := range s.m {
		if !ss.busy {
			n += ss.seq.PagesHeld()
		}
	}
	return n
}
