package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A configured user or API token named in the single sign-on namespace is
// refused at start-up, with an error that says why.
func TestConfigRefusesSSONames(t *testing.T) {
	for name, body := range map[string]string{
		"user":  "web:\n  users:\n    - name: 'sso:0a1b2c3d:u-1'\n      password_hash: x\n      roles: [dpo]\n",
		"token": "web:\n  api_tokens:\n    - name: 'SSO:bulk'\n      token_sha256: x\n      roles: [dpo]\n",
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("%s: load: %v", name, err)
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "reserved for single sign-on") {
			t.Errorf("%s in the SSO namespace: %v", name, err)
		}
	}
}
