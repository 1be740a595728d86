package k8s

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor that
// optional/servicemonitor.yaml uses. The operator's Go types are not a dependency here; decoding strictly into
// this subset still fails on a misspelt field (and on a real field outside the subset: add it here first).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects is every manifest of this directory, decoded, by name.
type objects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	monitors    map[string]*serviceMonitor
	documents   int
}

// splitDocuments cuts a YAML stream at its "---" lines and drops documents that hold only comments.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for _, line := range strings.Split(cur.String(), "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, bytes.Clone(cur.Bytes()))
				break
			}
		}
		cur.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// decodeDocument decodes one document strictly (unknown and duplicate fields fail) into the type its
// apiVersion and kind name. Kinds this directory does not use are an error.
func decodeDocument(data []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("reading apiVersion/kind: %w", err)
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj = &serviceMonitor{}
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these manifests use", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// loadObjects decodes every document of every *.yaml file under dir.
func loadObjects(dir string) (*objects, error) {
	o := &objects{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		monitors:    map[string]*serviceMonitor{},
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing manifests: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifest: %w", err)
		}
		for i, d := range splitDocuments(data) {
			obj, err := decodeDocument(d)
			if err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", f, i+1, err)
			}
			o.documents++
			var name string
			switch v := obj.(type) {
			case *appsv1.Deployment:
				name = v.Name
				o.deployments[name] = v
			case *corev1.Service:
				name = v.Name
				o.services[name] = v
			case *corev1.ConfigMap:
				name = v.Name
				o.configMaps[name] = v
			case *serviceMonitor:
				name = v.Name
				o.monitors[name] = v
			}
			if name == "" {
				return nil, fmt.Errorf("%s, document %d: no metadata.name", f, i+1)
			}
		}
	}
	return o, nil
}

func TestDecodeStrict(t *testing.T) {
	const good = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: c
          image: i
          readinessProbe:
            httpGet: {path: /v2/health/ready, port: 8000}
`
	cases := []struct {
		name, doc, wantErr string
	}{
		{"valid", good, ""},
		{"misspelt probe field", strings.Replace(good, "readinessProbe", "readinesProbe", 1), `unknown field "readinesProbe"`},
		{"misspelt top-level field", strings.Replace(good, "spec:\n  selector", "spek:\n  selector", 1), `unknown field "spek"`},
		{"wrong type", strings.Replace(good, "spec:\n  selector", "spec:\n  replicas: two\n  selector", 1), "replicas"},
		{"duplicate field", strings.Replace(good, "  name: x\n", "  name: x\n  name: y\n", 1), `already set in map`},
		{"unknown kind", strings.Replace(good, "kind: Deployment", "kind: Deploymnet", 1), "not a kind"},
		{"bad quantity", strings.Replace(good, "          image: i\n", "          image: i\n          resources: {limits: {memory: 7Gx}}\n", 1), "quantities must match"},
		{"service monitor misspelt", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec:\n  endpoints:\n    - {port: metrics, intervall: 15s}\n", `unknown field "intervall"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeDocument([]byte(c.doc))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("want an error containing %q, got none", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want an error containing %q, got %v", c.wantErr, err)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"a: 1\n", 1},
		{"# only a comment\n---\na: 1\n---\nb: 2\n", 2},
		{"---\na: 1\n---\n", 1},
		{"a: |\n  x\n  ---not a separator\n", 1},
	}
	for _, c := range cases {
		if got := len(splitDocuments([]byte(c.in))); got != c.want {
			t.Errorf("splitDocuments(%q): %d documents, want %d", c.in, got, c.want)
		}
	}
}

// TestManifestsDecodeStrictly decodes every document of every file here and checks that the expected objects
// are all present.
func TestManifestsDecodeStrictly(t *testing.T) {
	o, err := loadObjects(".")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"Deployment":     {"omnikv-triton-cpu", "omnikv-triton-gpu"},
		"Service":        {"omnikv-triton"},
		"ConfigMap":      {"omnikv-model-config-cpu", "omnikv-model-config-gpu"},
		"ServiceMonitor": {"omnikv-triton"},
	}
	have := map[string]func(string) bool{
		"Deployment":     func(n string) bool { return o.deployments[n] != nil },
		"Service":        func(n string) bool { return o.services[n] != nil },
		"ConfigMap":      func(n string) bool { return o.configMaps[n] != nil },
		"ServiceMonitor": func(n string) bool { return o.monitors[n] != nil },
	}
	total := 0
	for kind, names := range want {
		for _, n := range names {
			total++
			if !have[kind](n) {
				t.Errorf("%s %q missing from the manifests", kind, n)
			}
		}
	}
	if o.documents != total {
		t.Errorf("%d documents decoded, want %d (a new object needs its checks here)", o.documents, total)
	}
}
