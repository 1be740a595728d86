package main

/*
// The Triton symbols resolve from the server process at dlopen time. Let a plain executable link
// too (go build ./..., go vet): it is an empty main that never calls them.
#cgo LDFLAGS: -Wl,--unresolved-symbols=ignore-all
#include "triton.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
	"github.com/rs/zerolog"
)

// Backend API version this library needs: major must match, minor is the least that has every
// call we make (ResponseFactoryIsCancelled and RequestIsCancelled came with 1.16).
const (
	apiMajor = 1
	apiMinor = 16
)

// modelState is one loaded model: its validated configuration and its metrics (nil: none).
type modelState struct {
	cfg     serve.Config
	metrics *modelMetrics
}

// instanceState is one model instance and the serve.Model that serves it. Its requests run on
// goroutines tracked by wg and stop when ctx is cancelled.
type instanceState struct {
	name   string
	model  serve.Model
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// releaseMetrics takes the instance's gauge values out of its model's metrics.
	releaseMetrics func()
}

// Triton's handles are the keys; their values never move, so C pointers serve as map keys.
var (
	mu        sync.Mutex
	models    = map[*C.TRITONBACKEND_Model]*modelState{}
	instances = map[*C.TRITONBACKEND_ModelInstance]*instanceState{}
	// logger is what models log through (set in TRITONBACKEND_Initialize).
	logger = zerolog.Nop()
	// backendConfig holds the --backend-config=omnikv,key=value settings (set in
	// TRITONBACKEND_Initialize, read-only afterwards).
	backendConfig = map[string]string{}
)

// TRITONBACKEND_Initialize: Triton calls this once when it loads the library, before any model
// of the backend loads. It checks the server's backend API version.
//
//export TRITONBACKEND_Initialize
func TRITONBACKEND_Initialize(backend *C.TRITONBACKEND_Backend) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_Initialize", func() error {
		var major, minor C.uint32_t
		if err := check(C.TRITONBACKEND_ApiVersion(&major, &minor), "TRITONBACKEND_ApiVersion"); err != nil {
			return err
		}
		if major != apiMajor || minor < apiMinor {
			return serve.Errorf(serve.CodeUnsupported, "server backend API %d.%d, omnikv needs %d.%d or a later 1.x", major, minor, apiMajor, apiMinor)
		}
		var name *C.char
		if err := check(C.TRITONBACKEND_BackendName(backend, &name), "TRITONBACKEND_BackendName"); err != nil {
			return err
		}
		var msg *C.TRITONSERVER_Message // owned by Triton: never delete it
		if err := check(C.TRITONBACKEND_BackendConfig(backend, &msg), "TRITONBACKEND_BackendConfig"); err != nil {
			return err
		}
		var (
			base *C.char
			size C.size_t
		)
		if err := check(C.TRITONSERVER_MessageSerializeToJson(msg, &base, &size), "TRITONSERVER_MessageSerializeToJson"); err != nil {
			return err
		}
		bc, err := serve.ParseBackendConfig(C.GoBytes(unsafe.Pointer(base), C.int(size)))
		if err != nil {
			return err
		}
		mu.Lock()
		backendConfig = bc
		mu.Unlock()
		logger = newLogger()
		startProfile()
		logInfo(fmt.Sprintf("omnikv backend %q initialized (server backend API %d.%d, backend config %v)", C.GoString(name), major, minor, bc))
		return nil
	})
}

// OMNIKV_CPUPROFILE=FILE writes a Go CPU profile of the backend, from the library's initialization to
// its finalization (Triton's shutdown), for `go tool pprof`.
var profile *os.File

func startProfile() {
	path := os.Getenv("OMNIKV_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		logInfo(fmt.Sprintf("OMNIKV_CPUPROFILE: %v (no profile)", err))
		return
	}
	profile = f
	logInfo("writing a CPU profile to " + path)
}

func stopProfile() {
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
		profile = nil
	}
}

// TRITONBACKEND_Finalize: Triton calls this once before unloading the library, after every
// model of the backend was finalized.
//
//export TRITONBACKEND_Finalize
func TRITONBACKEND_Finalize(backend *C.TRITONBACKEND_Backend) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_Finalize", func() error {
		closeMetricFamilies()
		stopProfile()
		return nil
	})
}

// TRITONBACKEND_ModelInitialize: Triton calls this when it loads a model (once per version),
// before creating its instances. The whole configuration is validated here so that a bad one
// fails the load. The model's metrics are made here (never failing the load: see metrics.go).
//
//export TRITONBACKEND_ModelInitialize
func TRITONBACKEND_ModelInitialize(model *C.TRITONBACKEND_Model) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_ModelInitialize", func() error {
		cfg, err := readModelConfig(model)
		if err != nil {
			return err
		}
		if err := serve.CheckConfig(cfg); err != nil {
			return err
		}
		mu.Lock()
		cfg.Backend = backendConfig
		mu.Unlock()
		ms := &modelState{cfg: cfg, metrics: openModelMetrics(cfg)}
		ms.cfg.Metrics = ms.metrics.sink()
		mu.Lock()
		models[model] = ms
		mu.Unlock()
		logInfo(fmt.Sprintf("model %q version %d loaded from %s (mode %q)", cfg.Name, cfg.Version, cfg.RepositoryDir, cfg.Params["mode"]))
		return nil
	})
}

// readModelConfig reads a model's name, version, repository directory and configuration.
func readModelConfig(model *C.TRITONBACKEND_Model) (serve.Config, error) {
	var name *C.char
	if err := check(C.TRITONBACKEND_ModelName(model, &name), "TRITONBACKEND_ModelName"); err != nil {
		return serve.Config{}, err
	}
	var version C.uint64_t
	if err := check(C.TRITONBACKEND_ModelVersion(model, &version), "TRITONBACKEND_ModelVersion"); err != nil {
		return serve.Config{}, err
	}
	var (
		artifact C.TRITONBACKEND_ArtifactType
		location *C.char
	)
	if err := check(C.TRITONBACKEND_ModelRepository(model, &artifact, &location), "TRITONBACKEND_ModelRepository"); err != nil {
		return serve.Config{}, err
	}
	if artifact != C.OMNIKV_ARTIFACT_FILESYSTEM {
		return serve.Config{}, serve.Errorf(serve.CodeUnsupported, "model %q: repository artifact type %d, only the filesystem is supported", C.GoString(name), int(artifact))
	}
	var msg *C.TRITONSERVER_Message
	if err := check(C.TRITONBACKEND_ModelConfig(model, 1, &msg), "TRITONBACKEND_ModelConfig"); err != nil {
		return serve.Config{}, err
	}
	defer C.TRITONSERVER_MessageDelete(msg) // the model config message is ours to delete
	var (
		base *C.char
		size C.size_t
	)
	if err := check(C.TRITONSERVER_MessageSerializeToJson(msg, &base, &size), "TRITONSERVER_MessageSerializeToJson"); err != nil {
		return serve.Config{}, err
	}
	cfg, err := serve.ParseConfig(C.GoBytes(unsafe.Pointer(base), C.int(size)))
	if err != nil {
		return serve.Config{}, fmt.Errorf("model %q: %w", C.GoString(name), err)
	}
	cfg.Name = C.GoString(name)
	cfg.Version = int64(version)
	cfg.RepositoryDir = C.GoString(location)
	return cfg, nil
}

// TRITONBACKEND_ModelFinalize: Triton calls this when it unloads a model, after all of its
// instances were finalized. The model's metrics go.
//
//export TRITONBACKEND_ModelFinalize
func TRITONBACKEND_ModelFinalize(model *C.TRITONBACKEND_Model) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_ModelFinalize", func() error {
		mu.Lock()
		ms := models[model]
		delete(models, model)
		mu.Unlock()
		if ms != nil {
			ms.metrics.close()
		}
		return nil
	})
}

// TRITONBACKEND_ModelInstanceInitialize: Triton calls this for each instance of a model (the
// config's instance_group), possibly concurrently for several instances.
//
//export TRITONBACKEND_ModelInstanceInitialize
func TRITONBACKEND_ModelInstanceInitialize(instance *C.TRITONBACKEND_ModelInstance) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_ModelInstanceInitialize", func() error {
		var name *C.char
		if err := check(C.TRITONBACKEND_ModelInstanceName(instance, &name), "TRITONBACKEND_ModelInstanceName"); err != nil {
			return err
		}
		var kind C.TRITONSERVER_InstanceGroupKind
		if err := check(C.TRITONBACKEND_ModelInstanceKind(instance, &kind), "TRITONBACKEND_ModelInstanceKind"); err != nil {
			return err
		}
		var device C.int32_t
		if err := check(C.TRITONBACKEND_ModelInstanceDeviceId(instance, &device), "TRITONBACKEND_ModelInstanceDeviceId"); err != nil {
			return err
		}
		var model *C.TRITONBACKEND_Model
		if err := check(C.TRITONBACKEND_ModelInstanceModel(instance, &model), "TRITONBACKEND_ModelInstanceModel"); err != nil {
			return err
		}
		mu.Lock()
		ms := models[model]
		mu.Unlock()
		if ms == nil {
			return serve.Errorf(serve.CodeInternal, "instance %q: its model was not initialized", C.GoString(name))
		}
		inst := serve.Instance{Name: C.GoString(name), Kind: serve.InstanceKind(kind), DeviceID: int(device)}
		// Each instance's engine reports through its own view of the model's metrics, so that the
		// gauges of several instances add up.
		cfg := ms.cfg
		var releaseMetrics func()
		cfg.Metrics, releaseMetrics = ms.metrics.forInstance()
		m, err := serve.NewModel(cfg, inst, logger.With().Str("model", cfg.Name).Str("instance", inst.Name).Logger())
		if err != nil {
			releaseMetrics()
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		instances[instance] = &instanceState{name: inst.Name, model: m, ctx: ctx, cancel: cancel, releaseMetrics: releaseMetrics}
		mu.Unlock()
		logInfo(fmt.Sprintf("instance %q ready (kind %v, device %d)", inst.Name, inst.Kind, inst.DeviceID))
		return nil
	})
}

// instanceDrainTimeout bounds how long finalizing an instance waits for its requests.
const instanceDrainTimeout = 30 * time.Second

// TRITONBACKEND_ModelInstanceFinalize: Triton calls this when it removes an instance. Requests
// still running are cancelled and awaited (bounded by instanceDrainTimeout).
//
//export TRITONBACKEND_ModelInstanceFinalize
func TRITONBACKEND_ModelInstanceFinalize(instance *C.TRITONBACKEND_ModelInstance) *C.TRITONSERVER_Error {
	return guarded("TRITONBACKEND_ModelInstanceFinalize", func() error {
		mu.Lock()
		st := instances[instance]
		delete(instances, instance)
		mu.Unlock()
		if st == nil {
			return nil
		}
		st.cancel()
		// Dropped from here on: what the engine still reports (it must not hold the model's gauges up).
		defer st.releaseMetrics()
		done := make(chan struct{})
		go func() { st.wg.Wait(); close(done) }()
		select {
		case <-done:
			return st.model.Close()
		case <-time.After(instanceDrainTimeout):
			// Closing under running requests could free what they use: leak instead.
			return serve.Errorf(serve.CodeInternal, "instance %q: requests still running after %v; model not closed", st.name, instanceDrainTimeout)
		}
	})
}
