package tutorials

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
)

// tutorials lists the directories the docs promise, so that a tutorial lost in a
// rename fails here instead of silently not being checked.
var tutorials = []string{"drbd-vip-service", "tomcat-workflows", "vip-auto-failback", "vm-takeover", "web-mail-pair"}

// TestTutorialConfigsValidate is `vigil config validate` on every tutorial's
// vigil.yaml: config.Load returns an error for any problem.
func TestTutorialConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../../docs/tutorials/*/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		found[name] = true
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatalf("%s does not validate: %v", f, err)
			}
			if len(cfg.Groups) == 0 {
				t.Fatalf("%s has no group", f)
			}
			md := filepath.Join("../../docs/tutorials", name+".md")
			text, err := os.ReadFile(md)
			if err != nil {
				t.Fatalf("the tutorial's text: %v", err)
			}
			// The text must point at the config it explains.
			if !strings.Contains(string(text), name+"/vigil.yaml") {
				t.Errorf("%s does not mention %s/vigil.yaml", md, name)
			}
		})
	}
	for _, n := range tutorials {
		if !found[n] {
			t.Errorf("docs/tutorials/%s/vigil.yaml is missing", n)
		}
	}
}
