package serve

import (
	"math"
	"os"
	"runtime/debug"
	"sync"

	"github.com/rs/zerolog"
)

// minGoHeap is the least soft limit the backend gives the Go heap (activations, tokenizer, requests).
const minGoHeap = 512 << 20

var memLimitMu sync.Mutex

// setGoMemoryLimit derives the Go runtime's soft memory limit (GOMEMLIMIT) from a model's config: the
// machine's RAM less what the model's KV budgets and weights may take (they live outside the Go heap, in
// mappings), at least minGoHeap. The process keeps the smallest limit of its models. An operator's own
// GOMEMLIMIT environment variable wins. Without budgets (unlimited) nothing is set.
func setGoMemoryLimit(o GenOptions, log zerolog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || o.ResidentBudget == 0 || o.OffloadBudget == 0 {
		return
	}
	ram, err := physicalRAM()
	if err != nil {
		return
	}
	var weights int64
	if fi, err := os.Stat(o.Weights); err == nil && !fi.IsDir() {
		weights = fi.Size()
	}
	limit := max(ram-o.ResidentBudget-o.OffloadBudget-weights, minGoHeap)
	memLimitMu.Lock()
	defer memLimitMu.Unlock()
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 && cur <= limit {
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info().Int64("go_memory_limit_mib", limit>>20).Int64("ram_mib", ram>>20).Int64("kv_budgets_mib", (o.ResidentBudget+o.OffloadBudget)>>20).
		Int64("weights_mib", weights>>20).Msg("Go heap soft limit (GOMEMLIMIT) set from the KV budgets")
}
