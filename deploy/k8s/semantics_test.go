package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	serverContainer = "tritonserver"
	gpuResource     = corev1.ResourceName("nvidia.com/gpu")
	// weightsBytes is the model file's size rounded up (SmolLM2-135M-Instruct.Q4_1.gguf: 98,362,432 bytes).
	weightsBytes = 128 << 20
	// runtimeBytes is what the server needs besides weights and KV: 170 MiB RSS after loading every model
	// (docs/serving.md, reliability RSS test), with room for the Go heap and Triton's buffers.
	runtimeBytes = 512 << 20
	// minLoadSeconds is how long the startup probe must allow for loading the models.
	minLoadSeconds = 120
)

// variants are the two Deployments and what each must run.
var variants = []struct {
	deployment, configMap, instanceKind string
	gpu                                 bool
}{
	{"omnikv-triton-cpu", "omnikv-model-config-cpu", "KIND_CPU", false},
	{"omnikv-triton-gpu", "omnikv-model-config-gpu", "KIND_GPU", true},
}

func mustLoad(t *testing.T) *objects {
	t.Helper()
	o, err := loadObjects(".")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func serverOf(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == serverContainer {
			return c
		}
	}
	t.Fatalf("deployment %s has no container %q", d.Name, serverContainer)
	return nil
}

// containerPort resolves a probe's or Service's port (a number or a port name) against the container.
func containerPort(c *corev1.Container, port string) (int32, error) {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("port %q is not a port of container %s", port, c.Name)
}

func TestDeployments(t *testing.T) {
	o := mustLoad(t)
	wantPorts := map[string]int32{"http": 8000, "grpc": 8001, "metrics": 8002}
	var image string
	for _, v := range variants {
		t.Run(v.deployment, func(t *testing.T) {
			d := o.deployments[v.deployment]
			if d == nil {
				t.Fatalf("deployment %s missing", v.deployment)
			}
			pod := &d.Spec.Template
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || sel.Empty() {
				t.Fatalf("selector %v: %v (must be a non-empty selector)", d.Spec.Selector, err)
			}
			if !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("selector %v does not match the pod template's labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
			}
			c := serverOf(t, d)
			if image == "" {
				image = c.Image
			} else if c.Image != image {
				t.Errorf("image %q, but the other variant runs %q: both run the one image deploy/Dockerfile builds", c.Image, image)
			}
			for name, port := range wantPorts {
				if got, err := containerPort(c, name); err != nil || got != port {
					t.Errorf("port %s: %d, %v; want %d", name, got, err, port)
				}
			}
			probes := []struct {
				name string
				p    *corev1.Probe
				path string
			}{
				{"startupProbe", c.StartupProbe, "/v2/health/ready"},
				{"readinessProbe", c.ReadinessProbe, "/v2/health/ready"},
				{"livenessProbe", c.LivenessProbe, "/v2/health/live"},
			}
			for _, p := range probes {
				if p.p == nil || p.p.HTTPGet == nil {
					t.Errorf("%s: want an httpGet probe on %s", p.name, p.path)
					continue
				}
				if p.p.HTTPGet.Path != p.path {
					t.Errorf("%s: path %q, want %q", p.name, p.p.HTTPGet.Path, p.path)
				}
				if got, err := containerPort(c, p.p.HTTPGet.Port.String()); err != nil || got != 8000 {
					t.Errorf("%s: port %s resolves to %d (%v), want Triton's HTTP port 8000", p.name, p.p.HTTPGet.Port.String(), got, err)
				}
			}
			if s := c.StartupProbe; s != nil && s.PeriodSeconds*s.FailureThreshold < minLoadSeconds {
				t.Errorf("startupProbe allows %d s for loading, want at least %d", s.PeriodSeconds*s.FailureThreshold, minLoadSeconds)
			}
			if !containsArg(c.Args, "--model-repository=/models") || len(c.Args) == 0 || c.Args[0] != "tritonserver" {
				t.Errorf("args %q: want tritonserver --model-repository=/models (the image's ENTRYPOINT is kept)", c.Args)
			}
			ann := pod.Annotations
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
				t.Errorf("prometheus annotations %v: want scrape true, path /metrics", ann)
			}
			if got, err := containerPort(c, ann["prometheus.io/port"]); err != nil || got != 8002 {
				t.Errorf("prometheus.io/port %q: want the metrics port 8002", ann["prometheus.io/port"])
			}
			sc := pod.Spec.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != dockerfileUID(t) {
				t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser = the Dockerfile's USER %d", sc, dockerfileUID(t))
			}
			gpus := c.Resources.Limits[gpuResource]
			if v.gpu && gpus.Value() < 1 {
				t.Errorf("the GPU variant's limits %v request no %s", c.Resources.Limits, gpuResource)
			}
			gpuReq := c.Resources.Requests[gpuResource]
			if !v.gpu && (!gpus.IsZero() || !gpuReq.IsZero()) {
				t.Errorf("the CPU variant asks for a GPU: %v", c.Resources)
			}
			checkMounts(t, o, d, c, v.configMap)
			cm := o.configMaps[v.configMap]
			for key, text := range cm.Data {
				kinds := regexp.MustCompile(`kind:\s*(KIND_\w+)`).FindAllStringSubmatch(text, -1)
				if len(kinds) == 0 {
					t.Errorf("%s/%s: no instance_group kind", v.configMap, key)
				}
				for _, k := range kinds {
					if k[1] != v.instanceKind {
						t.Errorf("%s/%s: instance kind %s, want %s", v.configMap, key, k[1], v.instanceKind)
					}
				}
			}
		})
	}
	if !strings.HasSuffix(image, ":"+dockerfileTritonRelease(t)) {
		t.Errorf("image %q: its tag must be the Triton release deploy/Dockerfile builds on (%s)", image, dockerfileTritonRelease(t))
	}
}

// checkMounts checks that every mount names a volume of the pod, that every ConfigMap mount's key exists, and
// that each model of the ConfigMap gets its config and its weights under /models/<model>/.
func checkMounts(t *testing.T, o *objects, d *appsv1.Deployment, c *corev1.Container, configMap string) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	cm := o.configMaps[configMap]
	if cm == nil {
		t.Fatalf("ConfigMap %s missing", configMap)
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s: no volume %q in the pod", m.MountPath, m.Name)
			continue
		}
		if v.ConfigMap != nil {
			if v.ConfigMap.Name != configMap {
				t.Errorf("volume %s uses ConfigMap %s, want %s", v.Name, v.ConfigMap.Name, configMap)
			}
			if _, ok := cm.Data[m.SubPath]; !ok {
				t.Errorf("mount %s: key %q not in ConfigMap %s", m.MountPath, m.SubPath, configMap)
			}
		}
		mounted[m.MountPath] = true
	}
	for key := range cm.Data {
		model := strings.TrimSuffix(key, ".config.pbtxt")
		for _, p := range []string{"/models/" + model + "/config.pbtxt", "/models/" + model + "/1/model.gguf"} {
			if !mounted[p] {
				t.Errorf("model %s: nothing mounted at %s", model, p)
			}
		}
	}
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

func TestServiceSelectsAndExposes(t *testing.T) {
	o := mustLoad(t)
	svc := o.services["omnikv-triton"]
	if svc == nil {
		t.Fatal("service omnikv-triton missing")
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("the service selects nothing")
	}
	wantPorts := map[string]int32{"http": 8000, "grpc": 8001, "metrics": 8002}
	for _, v := range variants {
		d := o.deployments[v.deployment]
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("service selector %v does not match %s's pods %v", svc.Spec.Selector, d.Name, d.Spec.Template.Labels)
		}
		c := serverOf(t, d)
		for _, p := range svc.Spec.Ports {
			got, err := containerPort(c, p.TargetPort.String())
			if err != nil || got != wantPorts[p.Name] || p.Port != wantPorts[p.Name] {
				t.Errorf("service port %s (%d -> %s) reaches %d in %s (%v), want %d", p.Name, p.Port, p.TargetPort.String(), got, d.Name, err, wantPorts[p.Name])
			}
		}
	}
	if len(svc.Spec.Ports) != len(wantPorts) {
		t.Errorf("service has %d ports, want %d", len(svc.Spec.Ports), len(wantPorts))
	}
	for _, m := range o.monitors {
		msel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil || !msel.Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor %s selector %v does not match the service's labels %v", m.Name, m.Spec.Selector, svc.Labels)
		}
		for _, e := range m.Spec.Endpoints {
			if e.Port != "metrics" || e.Path != "/metrics" {
				t.Errorf("ServiceMonitor %s endpoint %+v: want port metrics, path /metrics", m.Name, e)
			}
		}
	}
}

// TestSessionAffinityMatchesChatIdleTimeout: the Service keeps a client on one replica at least as long as
// omnikv_chat keeps an idle session (its session_idle_timeout_s).
func TestSessionAffinityMatchesChatIdleTimeout(t *testing.T) {
	o := mustLoad(t)
	svc := o.services["omnikv-triton"]
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP || svc.Spec.SessionAffinityConfig == nil ||
		svc.Spec.SessionAffinityConfig.ClientIP == nil || svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
		t.Fatalf("service sessionAffinity %q %+v: want ClientIP with a timeout", svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig)
	}
	for _, v := range variants {
		idle, err := strconv.Atoi(parameter(o.configMaps[v.configMap].Data["omnikv_chat.config.pbtxt"], "session_idle_timeout_s"))
		if err != nil {
			t.Fatalf("%s: omnikv_chat session_idle_timeout_s: %v", v.configMap, err)
		}
		if got := *svc.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds; int(got) < idle {
			t.Errorf("session affinity lasts %d s, shorter than omnikv_chat's session_idle_timeout_s %d (%s)", got, idle, v.configMap)
		}
	}
}

// TestConfigMapsMatchModelRepository: the CPU ConfigMap holds model_repository/'s configs unchanged; the GPU
// one differs only in the instance kind. Rerun gen-configmaps.sh when this fails.
func TestConfigMapsMatchModelRepository(t *testing.T) {
	o := mustLoad(t)
	for _, v := range variants {
		cm := o.configMaps[v.configMap]
		for key, got := range cm.Data {
			model := strings.TrimSuffix(key, ".config.pbtxt")
			data, err := os.ReadFile(filepath.Join("..", "..", "model_repository", model, "config.pbtxt"))
			if err != nil {
				t.Errorf("%s/%s: %v", v.configMap, key, err)
				continue
			}
			want := strings.ReplaceAll(string(data), "kind: KIND_CPU", "kind: "+v.instanceKind)
			if got != want {
				t.Errorf("%s/%s differs from model_repository/%s/config.pbtxt: run deploy/k8s/gen-configmaps.sh", v.configMap, key, model)
			}
		}
		if len(cm.Data) < 2 {
			t.Errorf("%s holds %d configs, want omnikv and omnikv_chat", v.configMap, len(cm.Data))
		}
	}
}

// TestMemorySizedFromBudgets: a replica's memory limit covers the weights, the runtime and every model's KV
// budgets that live in host RAM (on the CPU both tiers; on a GPU the offload tier only).
func TestMemorySizedFromBudgets(t *testing.T) {
	o := mustLoad(t)
	for _, v := range variants {
		var kv int64
		for key, text := range o.configMaps[v.configMap].Data {
			tiers := []string{"kv_offload_budget"}
			if !v.gpu {
				tiers = append(tiers, "kv_resident_budget")
			}
			for _, tier := range tiers {
				n, err := parseBytes(parameter(text, tier))
				if err != nil {
					t.Fatalf("%s/%s %s: %v (the manifests need absolute budgets to size memory)", v.configMap, key, tier, err)
				}
				kv += n
			}
		}
		c := serverOf(t, o.deployments[v.deployment])
		limit := c.Resources.Limits.Memory()
		need := kv + weightsBytes + runtimeBytes
		if limit.Value() < need {
			t.Errorf("%s: memory limit %s < %s needed (KV %d MiB + weights + runtime)", v.deployment, limit, resource.NewQuantity(need, resource.BinarySI), kv>>20)
		}
		if req := c.Resources.Requests.Memory(); req.IsZero() || req.Cmp(*limit) > 0 {
			t.Errorf("%s: memory request %s must be set and at most the limit %s", v.deployment, req, limit)
		}
		if c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: no CPU request", v.deployment)
		}
	}
}

// parameter returns a model config's parameters { key: K, value: { string_value: V } } value, or "".
func parameter(config, key string) string {
	re := regexp.MustCompile(`key:\s*"` + regexp.QuoteMeta(key) + `"\s*,?\s*value:\s*\{\s*string_value:\s*"([^"]*)"`)
	if m := re.FindStringSubmatch(config); m != nil {
		return m[1]
	}
	return ""
}

// parseBytes reads the backend's absolute byte sizes: "1073741824", "512MiB", "2GB". Fractions of RAM
// ("0.25", "25%") cannot size a container and are an error.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || (mult == 1 && n < 1<<10) {
		return 0, fmt.Errorf("%q is not an absolute size such as 1GiB", s)
	}
	return n * mult, nil
}

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"1GiB", 1 << 30}, {"512MiB", 512 << 20}, {"2GB", 2e9}, {"1073741824", 1 << 30},
		{"0.25", 0}, {"25%", 0}, {"", 0}, {"0", 0}, {"-1GiB", 0},
	}
	for _, c := range cases {
		got, err := parseBytes(c.in)
		if (err != nil) != (c.want == 0) || got != c.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// dockerfileTritonRelease is the yy.mm of deploy/Dockerfile's ARG TRITON_TAG (e.g. 24.10 of 24.10-py3).
func dockerfileTritonRelease(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^ARG TRITON_TAG=(\d\d\.\d\d)-py3$`).FindStringSubmatch(readDockerfile(t))
	if m == nil {
		t.Fatal("deploy/Dockerfile has no ARG TRITON_TAG=<yy.mm>-py3")
	}
	return m[1]
}

// dockerfileUID is the numeric user of deploy/Dockerfile's last USER line.
func dockerfileUID(t *testing.T) int64 {
	t.Helper()
	all := regexp.MustCompile(`(?m)^USER (\d+)(:\d+)?$`).FindAllStringSubmatch(readDockerfile(t), -1)
	if len(all) == 0 {
		t.Fatal("deploy/Dockerfile has no numeric USER line")
	}
	uid, _ := strconv.ParseInt(all[len(all)-1][1], 10, 64)
	return uid
}

func readDockerfile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
