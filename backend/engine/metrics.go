package engine

// Metrics. The engine reports what it does to a Sink; the Triton adapter (cgo/) turns it into Prometheus
// metrics on the server's metrics port through Triton's custom metrics API, with a "model" label added.
// Every metric the engine reports is listed here with its Prometheus name, so that the adapter can create
// them all at model load.

// Counter is a monotonically increasing count.
type Counter int

// Counters.
const (
	PromptTokens    Counter = iota // prompt tokens prefilled
	GeneratedTokens                // tokens generated
	RequestsDone                   // generations ended, whatever the reason
	Cancellations                  // generations ended by a cancel (client, stop string excluded)
	Refusals                       // requests refused by admission (memory budget, session limit, queue)
	Evictions                      // idle sessions evicted to make room
	RowsFetched                    // KV rows copied from the offload tier for sparse layers
	BytesFetched                   // bytes of those rows
	StepErrors                     // forward steps that failed (their sequences ended with an error)
	numCounters
)

// Gauge is a value that goes up and down.
type Gauge int

// Gauges.
const (
	RunningSequences Gauge = iota // sequences in the running batch
	QueuedSequences               // requests waiting for admission
	OpenSessions                  // chat sessions held
	KVResidentUsed                // bytes of resident-tier KV (device memory, RAM on the CPU) in use
	KVResidentFree                // bytes of resident-tier KV allocated but free
	KVOffloadUsed                 // bytes of offload-tier KV (host RAM or a mapped file) in use
	KVOffloadFree                 // bytes of offload-tier KV allocated but free
	numGauges
)

// Histogram is a distribution of durations in seconds.
type Histogram int

// Histograms.
const (
	TimeToFirstToken  Histogram = iota // submission to the first generated token
	InterTokenLatency                  // between two generated tokens of a sequence
	StepLatency                        // one forward step (all sequences of the step)
	numHistograms
)

// MetricInfo describes one metric for the adapter.
type MetricInfo struct {
	Name   string            // Prometheus family name
	Help   string            // description
	Labels map[string]string // fixed labels of this metric within its family (several metrics may share a family)
}

var counterInfo = [numCounters]MetricInfo{
	PromptTokens:    {Name: "omnikv_prompt_tokens_total", Help: "Prompt tokens prefilled"},
	GeneratedTokens: {Name: "omnikv_generation_tokens_total", Help: "Tokens generated"},
	RequestsDone:    {Name: "omnikv_requests_finished_total", Help: "Generations finished (any reason)"},
	Cancellations:   {Name: "omnikv_cancellations_total", Help: "Generations cancelled before their end"},
	Refusals:        {Name: "omnikv_refusals_total", Help: "Requests refused by admission (memory budget, session limit, queue full)"},
	Evictions:       {Name: "omnikv_session_evictions_total", Help: "Idle chat sessions whose KV was evicted to make room"},
	RowsFetched:     {Name: "omnikv_sparse_rows_fetched_total", Help: "KV rows fetched from the offload tier for sparse layers"},
	BytesFetched:    {Name: "omnikv_sparse_bytes_fetched_total", Help: "Bytes of KV fetched from the offload tier for sparse layers"},
	StepErrors:      {Name: "omnikv_step_errors_total", Help: "Forward steps that failed"},
}

var gaugeInfo = [numGauges]MetricInfo{
	RunningSequences: {Name: "omnikv_running_sequences", Help: "Sequences in the running batch"},
	QueuedSequences:  {Name: "omnikv_queued_sequences", Help: "Requests waiting for admission"},
	OpenSessions:     {Name: "omnikv_open_sessions", Help: "Chat sessions held"},
	KVResidentUsed:   {Name: "omnikv_kv_bytes", Help: "KV cache bytes by tier and state", Labels: map[string]string{"tier": "resident", "state": "used"}},
	KVResidentFree:   {Name: "omnikv_kv_bytes", Help: "KV cache bytes by tier and state", Labels: map[string]string{"tier": "resident", "state": "free"}},
	KVOffloadUsed:    {Name: "omnikv_kv_bytes", Help: "KV cache bytes by tier and state", Labels: map[string]string{"tier": "offload", "state": "used"}},
	KVOffloadFree:    {Name: "omnikv_kv_bytes", Help: "KV cache bytes by tier and state", Labels: map[string]string{"tier": "offload", "state": "free"}},
}

var histInfo = [numHistograms]MetricInfo{
	TimeToFirstToken:  {Name: "omnikv_time_to_first_token_seconds", Help: "Time from submission to the first generated token"},
	InterTokenLatency: {Name: "omnikv_inter_token_latency_seconds", Help: "Time between two generated tokens of a sequence"},
	StepLatency:       {Name: "omnikv_step_seconds", Help: "Time of one forward step"},
}

// HistogramBuckets are the upper bounds (seconds) of every histogram's buckets.
var HistogramBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Counters, Gauges and Histograms list every metric with its description, indexed by its constant.
func Counters() []MetricInfo   { return counterInfo[:] }
func Gauges() []MetricInfo     { return gaugeInfo[:] }
func Histograms() []MetricInfo { return histInfo[:] }

// Sink receives the engine's measurements. The engine calls it from its scheduler goroutine and from
// request goroutines, so implementations must be safe for concurrent use and cheap (no blocking).
type Sink interface {
	Add(c Counter, v float64)
	Set(g Gauge, v float64)
	Observe(h Histogram, seconds float64)
}

// NopSink discards everything.
type NopSink struct{}

func (NopSink) Add(Counter, float64)       {}
func (NopSink) Set(Gauge, float64)         {}
func (NopSink) Observe(Histogram, float64) {}
