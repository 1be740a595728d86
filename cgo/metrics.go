package main

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include "triton.h"

// The histogram calls, found in the server process by omnikv_find_histograms (see triton.h).
static OMNIKV_MetricArgsNewFn omnikv_args_new;
static OMNIKV_MetricArgsSetHistogramFn omnikv_args_set_histogram;
static OMNIKV_MetricArgsDeleteFn omnikv_args_delete;
static OMNIKV_MetricNewWithArgsFn omnikv_metric_new_with_args;
static OMNIKV_MetricObserveFn omnikv_metric_observe;

// omnikv_find_histograms looks the histogram calls up in the server process: 1 when it has all of them.
static int omnikv_find_histograms(void) {
	omnikv_args_new = (OMNIKV_MetricArgsNewFn)dlsym(RTLD_DEFAULT, "TRITONSERVER_MetricArgsNew");
	omnikv_args_set_histogram = (OMNIKV_MetricArgsSetHistogramFn)dlsym(RTLD_DEFAULT, "TRITONSERVER_MetricArgsSetHistogram");
	omnikv_args_delete = (OMNIKV_MetricArgsDeleteFn)dlsym(RTLD_DEFAULT, "TRITONSERVER_MetricArgsDelete");
	omnikv_metric_new_with_args = (OMNIKV_MetricNewWithArgsFn)dlsym(RTLD_DEFAULT, "TRITONSERVER_MetricNewWithArgs");
	omnikv_metric_observe = (OMNIKV_MetricObserveFn)dlsym(RTLD_DEFAULT, "TRITONSERVER_MetricObserve");
	return omnikv_args_new != NULL && omnikv_args_set_histogram != NULL && omnikv_args_delete != NULL &&
		omnikv_metric_new_with_args != NULL && omnikv_metric_observe != NULL;
}

// omnikv_histogram_new makes a histogram metric of family with these bucket upper bounds. Only after
// omnikv_find_histograms returned 1.
static TRITONSERVER_Error* omnikv_histogram_new(TRITONSERVER_Metric** metric, TRITONSERVER_MetricFamily* family,
		const TRITONSERVER_Parameter** labels, uint64_t label_count, const double* bounds, uint64_t bound_count) {
	TRITONSERVER_MetricArgs* args = NULL;
	TRITONSERVER_Error* err = omnikv_args_new(&args);
	if (err != NULL) {
		return err;
	}
	err = omnikv_args_set_histogram(args, bounds, bound_count);
	if (err == NULL) {
		err = omnikv_metric_new_with_args(metric, family, labels, label_count, args);
	}
	// The metric holds its own copy of the bounds: the args go at once.
	TRITONSERVER_Error* derr = omnikv_args_delete(args);
	if (derr != NULL) {
		TRITONSERVER_ErrorDelete(derr);
	}
	return err;
}

static TRITONSERVER_Error* omnikv_observe(TRITONSERVER_Metric* metric, double value) {
	return omnikv_metric_observe(metric, value);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/engine"
	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

// The engine's metrics (backend/engine/metrics.go) on Triton's metrics port, through Triton's custom
// metrics API. Lifetimes: a metric family is process-wide (one per name, shared by every model), made
// on first use and deleted at TRITONBACKEND_Finalize; a model's metrics, labelled
// {model="<name>", version="<n>"} plus each metric's fixed labels, are made at
// TRITONBACKEND_ModelInitialize and deleted at TRITONBACKEND_ModelFinalize. Metrics are never worth a
// failed load: when they cannot be made (a warning says why), the model reports to engine.NopSink.
//
// Histograms are Triton's own histogram metrics where the server has them (Triton 24.08 and later),
// else, or with --backend-config=omnikv,emulate-histograms=true, counters that print the same
// Prometheus series: <name>_bucket{le="..."} (cumulative, up to le="+Inf"), <name>_sum, <name>_count.

// emulateHistogramsKey is the --backend-config key that forces emulated histograms.
const emulateHistogramsKey = "emulate-histograms"

type histogramMode int

const (
	histogramsNative histogramMode = iota + 1
	histogramsEmulated
)

func (h histogramMode) String() string {
	if h == histogramsNative {
		return "Triton histogram metrics"
	}
	return "emulated with counters"
}

type metricFamily struct {
	ptr  *C.TRITONSERVER_MetricFamily
	kind C.TRITONSERVER_MetricKind
}

// families holds the process-wide metric families by name. Its lock also serializes making models'
// metrics.
var families struct {
	sync.Mutex
	byName map[string]metricFamily
	mode   histogramMode // decided when the first model makes its metrics
	failed error         // sticky: a family could not be made, so no model reports metrics
	warned bool          // failed was logged
}

// familyLocked returns the family name of kind, making it on first use. The caller holds families.
func familyLocked(kind C.TRITONSERVER_MetricKind, name, help string) (*C.TRITONSERVER_MetricFamily, error) {
	if f, ok := families.byName[name]; ok {
		if f.kind != kind {
			return nil, fmt.Errorf("metric family %s: wanted as kind %d, made as kind %d", name, int(kind), int(f.kind))
		}
		return f.ptr, nil
	}
	cname, chelp := C.CString(name), C.CString(help)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(chelp))
	var f *C.TRITONSERVER_MetricFamily
	if err := check(C.TRITONSERVER_MetricFamilyNew(&f, kind, cname, chelp), "TRITONSERVER_MetricFamilyNew("+name+")"); err != nil {
		families.failed = err
		return nil, err
	}
	if families.byName == nil {
		families.byName = map[string]metricFamily{}
	}
	families.byName[name] = metricFamily{ptr: f, kind: kind}
	return f, nil
}

// histogramModeLocked decides, once per backend lifetime, how histograms are exposed. The caller
// holds families.
func histogramModeLocked(backend map[string]string) histogramMode {
	if families.mode != 0 {
		return families.mode
	}
	emulate := false
	if v, ok := backend[emulateHistogramsKey]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			logWarn(fmt.Sprintf("backend config %s=%q: not a boolean; ignored", emulateHistogramsKey, v))
		}
		emulate = b
	}
	switch {
	case emulate:
		families.mode = histogramsEmulated
	case C.omnikv_find_histograms() == 1:
		families.mode = histogramsNative
	default:
		families.mode = histogramsEmulated
		logInfo("this tritonserver has no histogram metrics (Triton 24.08 and later have them)")
	}
	logInfo("omnikv metric histograms: " + families.mode.String())
	return families.mode
}

// closeMetricFamilies deletes every family (TRITONBACKEND_Finalize, after every model's metrics were
// deleted) and forgets a failure, so that a later TRITONBACKEND_Initialize starts afresh.
func closeMetricFamilies() {
	families.Lock()
	defer families.Unlock()
	for name, f := range families.byName {
		if err := check(C.TRITONSERVER_MetricFamilyDelete(f.ptr), "TRITONSERVER_MetricFamilyDelete("+name+")"); err != nil {
			logWarn(err.Error())
		}
	}
	families.byName, families.mode, families.failed, families.warned = nil, 0, nil, false
}

// modelMetrics is one model's metrics, by the engine's constants. It is an engine.Sink (gauges are
// set as given); instances report through instanceMetrics views, whose gauges add up. Safe for
// concurrent use; updates after close are dropped.
type modelMetrics struct {
	name     string
	mu       sync.RWMutex // read: updates (the C calls); write: close
	closed   bool
	counters []*C.TRITONSERVER_Metric // by engine.Counter
	gauges   []*C.TRITONSERVER_Metric // by engine.Gauge
	hists    []histogramMetric        // by engine.Histogram
	bounds   []float64                // bucket upper bounds, seconds (engine.HistogramBuckets)
	made     []*C.TRITONSERVER_Metric // every metric made, for close
	warned   atomic.Bool              // an update failed and was logged (only the first is)
}

// histogramMetric is one histogram: native, or emulated by counters.
type histogramMetric struct {
	native     *C.TRITONSERVER_Metric
	buckets    []*C.TRITONSERVER_Metric // emulated: one per bound, then le="+Inf"
	sum, count *C.TRITONSERVER_Metric   // emulated
}

// openModelMetrics makes cfg's model's metrics. It never fails the load: on any error (or panic) it
// logs a warning (a failure to make families only once) and returns nil, which reports nothing.
func openModelMetrics(cfg serve.Config) (m *modelMetrics) {
	defer func() {
		if p := recover(); p != nil {
			logWarn(fmt.Sprintf("model %q: no omnikv metrics: panic: %v", cfg.Name, p))
			m = nil
		}
	}()
	families.Lock()
	defer families.Unlock()
	var err error
	if families.failed == nil {
		if m, err = newModelMetricsLocked(cfg); err == nil {
			return m
		}
	}
	switch {
	case families.failed == nil: // this model's metrics failed
		logWarn(fmt.Sprintf("model %q: no omnikv metrics: %v", cfg.Name, err))
	case !families.warned: // the families failed: say so once, for every model
		families.warned = true
		logWarn(fmt.Sprintf("no omnikv metrics for any model: %v", families.failed))
	}
	return nil
}

// newModelMetricsLocked makes every metric of engine/metrics.go for cfg's model; on error it deletes
// what it made. The caller holds families.
func newModelMetricsLocked(cfg serve.Config) (_ *modelMetrics, err error) {
	bounds := append([]float64(nil), engine.HistogramBuckets...)
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= bounds[i-1]) {
			return nil, fmt.Errorf("engine.HistogramBuckets %v: want finite, strictly increasing bounds", bounds)
		}
	}
	if len(bounds) == 0 {
		return nil, errors.New("engine.HistogramBuckets is empty")
	}
	mode := histogramModeLocked(cfg.Backend)
	m := &modelMetrics{name: cfg.Name, bounds: bounds}
	defer func() {
		if err != nil {
			m.deleteAll()
		}
	}()
	base := map[string]string{"model": cfg.Name, "version": strconv.FormatInt(cfg.Version, 10)}
	for _, info := range engine.Counters() {
		met, err := m.make(C.OMNIKV_METRIC_COUNTER, info.Name, info.Help, labels(base, info.Labels))
		if err != nil {
			return nil, err
		}
		m.counters = append(m.counters, met)
	}
	for _, info := range engine.Gauges() {
		met, err := m.make(C.OMNIKV_METRIC_GAUGE, info.Name, info.Help, labels(base, info.Labels))
		if err != nil {
			return nil, err
		}
		m.gauges = append(m.gauges, met)
	}
	for _, info := range engine.Histograms() {
		var h histogramMetric
		lab := labels(base, info.Labels)
		if mode == histogramsNative {
			if h.native, err = m.make(C.OMNIKV_METRIC_HISTOGRAM, info.Name, info.Help, lab); err != nil {
				return nil, err
			}
		} else {
			for i := 0; i <= len(bounds); i++ {
				le := "+Inf"
				if i < len(bounds) {
					le = strconv.FormatFloat(bounds[i], 'g', -1, 64)
				}
				c, err := m.make(C.OMNIKV_METRIC_COUNTER, info.Name+"_bucket", info.Help+" (histogram buckets: observations <= le)", labels(lab, map[string]string{"le": le}))
				if err != nil {
					return nil, err
				}
				h.buckets = append(h.buckets, c)
			}
			if h.sum, err = m.make(C.OMNIKV_METRIC_COUNTER, info.Name+"_sum", info.Help+" (histogram: sum of observations)", lab); err != nil {
				return nil, err
			}
			if h.count, err = m.make(C.OMNIKV_METRIC_COUNTER, info.Name+"_count", info.Help+" (histogram: number of observations)", lab); err != nil {
				return nil, err
			}
		}
		m.hists = append(m.hists, h)
	}
	return m, nil
}

// labels returns base with extra added.
func labels(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// make makes one metric with these labels in the family name of kind (made on first use); a
// histogram gets m.bounds. The caller holds families.
func (m *modelMetrics) make(kind C.TRITONSERVER_MetricKind, name, help string, labels map[string]string) (*C.TRITONSERVER_Metric, error) {
	f, err := familyLocked(kind, name, help)
	if err != nil {
		return nil, err
	}
	params := make([]*C.TRITONSERVER_Parameter, 0, len(labels))
	defer func() {
		for _, p := range params {
			C.TRITONSERVER_ParameterDelete(p) // the metric copied them
		}
	}()
	for k, v := range labels {
		ck, cv := C.CString(k), C.CString(v)
		p := C.TRITONSERVER_ParameterNew(ck, C.OMNIKV_PARAM_STRING, unsafe.Pointer(cv))
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if p == nil {
			return nil, fmt.Errorf("metric %s: TRITONSERVER_ParameterNew(%s) failed", name, k)
		}
		params = append(params, p)
	}
	var lp **C.TRITONSERVER_Parameter
	if len(params) > 0 {
		lp = &params[0]
	}
	var met *C.TRITONSERVER_Metric
	var e *C.TRITONSERVER_Error
	if kind == C.OMNIKV_METRIC_HISTOGRAM {
		e = C.omnikv_histogram_new(&met, f, lp, C.uint64_t(len(params)), (*C.double)(unsafe.Pointer(&m.bounds[0])), C.uint64_t(len(m.bounds)))
	} else {
		e = C.TRITONSERVER_MetricNew(&met, f, lp, C.uint64_t(len(params)))
	}
	if err := check(e, "TRITONSERVER_MetricNew("+name+")"); err != nil {
		return nil, err
	}
	m.made = append(m.made, met)
	return met, nil
}

// deleteAll deletes every metric made.
func (m *modelMetrics) deleteAll() {
	for _, met := range m.made {
		if err := check(C.TRITONSERVER_MetricDelete(met), "TRITONSERVER_MetricDelete"); err != nil {
			logWarn(fmt.Sprintf("model %q: %v", m.name, err))
		}
	}
	m.made = nil
}

// close deletes the model's metrics (TRITONBACKEND_ModelFinalize); later updates are dropped.
// Nil-safe.
func (m *modelMetrics) close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	m.deleteAll()
}

// sink is what a model-wide engine would report to. Nil-safe: engine.NopSink without metrics.
func (m *modelMetrics) sink() engine.Sink {
	if m == nil {
		return engine.NopSink{}
	}
	return m
}

// forInstance returns the sink one instance's engine reports to, and what takes that instance's
// gauge values away again when it goes (call it after the engine stopped). Nil-safe.
func (m *modelMetrics) forInstance() (engine.Sink, func()) {
	if m == nil {
		return engine.NopSink{}, func() {}
	}
	s := &instanceMetrics{m: m, last: make([]float64, len(m.gauges))}
	return s, s.release
}

// fail logs the first failed update of the model; the rest are dropped silently (a sink must not
// block or flood the log).
func (m *modelMetrics) fail(err error) {
	if m.warned.CompareAndSwap(false, true) {
		logWarn(fmt.Sprintf("model %q: omnikv metric update failed (later failures are not logged): %v", m.name, err))
	}
}

// call checks the result of one update.
func (m *modelMetrics) call(e *C.TRITONSERVER_Error, what string) {
	if err := check(e, what); err != nil {
		m.fail(err)
	}
}

// Add adds v (>= 0) to counter c.
func (m *modelMetrics) Add(c engine.Counter, v float64) {
	if !(v >= 0) || math.IsInf(v, 1) {
		m.fail(fmt.Errorf("counter %d: cannot add %v", int(c), v))
		return
	}
	if v == 0 {
		return
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	if int(c) < 0 || int(c) >= len(m.counters) {
		m.fail(fmt.Errorf("no counter %d", int(c)))
		return
	}
	m.call(C.TRITONSERVER_MetricIncrement(m.counters[c], C.double(v)), "TRITONSERVER_MetricIncrement")
}

// Set sets gauge g to v.
func (m *modelMetrics) Set(g engine.Gauge, v float64) { m.gauge(g, v, false) }

// gauge sets gauge g to v, or adds v to it.
func (m *modelMetrics) gauge(g engine.Gauge, v float64, add bool) {
	if math.IsNaN(v) {
		m.fail(fmt.Errorf("gauge %d: NaN", int(g)))
		return
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	if int(g) < 0 || int(g) >= len(m.gauges) {
		m.fail(fmt.Errorf("no gauge %d", int(g)))
		return
	}
	if add {
		m.call(C.TRITONSERVER_MetricIncrement(m.gauges[g], C.double(v)), "TRITONSERVER_MetricIncrement")
	} else {
		m.call(C.TRITONSERVER_MetricSet(m.gauges[g], C.double(v)), "TRITONSERVER_MetricSet")
	}
}

// Observe records a duration in histogram h; a negative one counts as 0.
func (m *modelMetrics) Observe(h engine.Histogram, seconds float64) {
	if math.IsNaN(seconds) {
		m.fail(fmt.Errorf("histogram %d: NaN", int(h)))
		return
	}
	seconds = math.Max(seconds, 0)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	if int(h) < 0 || int(h) >= len(m.hists) {
		m.fail(fmt.Errorf("no histogram %d", int(h)))
		return
	}
	hm := &m.hists[h]
	if hm.native != nil {
		m.call(C.omnikv_observe(hm.native, C.double(seconds)), "TRITONSERVER_MetricObserve")
		return
	}
	// Emulated: cumulative buckets, so every bucket whose bound holds the value counts it (+Inf always).
	for i, b := range hm.buckets {
		if i == len(m.bounds) || seconds <= m.bounds[i] {
			m.call(C.TRITONSERVER_MetricIncrement(b, 1), "TRITONSERVER_MetricIncrement")
		}
	}
	if !math.IsInf(seconds, 1) {
		m.call(C.TRITONSERVER_MetricIncrement(hm.sum, C.double(seconds)), "TRITONSERVER_MetricIncrement")
	}
	m.call(C.TRITONSERVER_MetricIncrement(hm.count, 1), "TRITONSERVER_MetricIncrement")
}

// instanceMetrics is the sink of one instance's engine. Counters and histograms go straight to the
// model's metrics. A gauge gets the change since this instance's last value, so that the gauges of
// a model with several instances (each with its own engine) hold their sum.
type instanceMetrics struct {
	m        *modelMetrics
	mu       sync.Mutex
	last     []float64 // by engine.Gauge: what this instance set last
	released bool
}

func (s *instanceMetrics) Add(c engine.Counter, v float64)       { s.m.Add(c, v) }
func (s *instanceMetrics) Observe(h engine.Histogram, v float64) { s.m.Observe(h, v) }

func (s *instanceMetrics) Set(g engine.Gauge, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.m.fail(fmt.Errorf("gauge %d: %v", int(g), v))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	if int(g) < 0 || int(g) >= len(s.last) {
		s.m.fail(fmt.Errorf("no gauge %d", int(g)))
		return
	}
	if d := v - s.last[g]; d != 0 {
		s.last[g] = v
		s.m.gauge(g, d, true)
	}
}

// release takes this instance's values out of the model's gauges; later Sets are dropped.
func (s *instanceMetrics) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	for g, v := range s.last {
		if v != 0 {
			s.m.gauge(engine.Gauge(g), -v, true)
		}
	}
}
